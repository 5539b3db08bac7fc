"""The broker link: the one place a paho client is built.

The agent's publisher, `adsb-agent tail` and `adsb-agent check` must reach the broker
the same way, or a check would pass that the agent then fails: the same URL forms
(`mqtt[s]://[user:pass@]host[:port]`), the same password sources (URL, then
`mqtt.password_file`, then systemd's `LoadCredential=mqtt-password`), the same TLS
settings, the same protocol (MQTT 5 or 3.1.1) and paho's version 2 callbacks. What
each does with the client (will, inflight cap, reconnect delays, callbacks, connect)
stays with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import MqttConfig
from agent.errors import ConfigError

# systemd LoadCredential= name for the broker password.
CREDENTIAL_NAME = "mqtt-password"


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect; `password` is never logged."""

    host: str
    port: int
    tls: bool
    user: str | None
    password: str | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> tuple[str, int, bool, str | None, str | None]:
    """`mqtt[s]://[user:pass@]host[:port]` -> host, port, tls, user, password."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError([f"mqtt.url: {_redact(url)!r} is not mqtt://host[:port] or mqtts://..."])
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError([f"mqtt.url: bad port in {_redact(url)!r}"]) from None
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, port, tls, user, password


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def resolve_password(cfg: MqttConfig, url_password: str | None) -> str | None:
    """URL password, else `password_file`, else the systemd credential, else None."""
    if url_password is not None:
        return url_password
    path = cfg.password_file
    if path is None and os.environ.get("CREDENTIALS_DIRECTORY"):
        cred = Path(os.environ["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_NAME
        path = str(cred) if cred.exists() else None
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None  # empty: no password
    except OSError as err:
        raise ConfigError([f"mqtt.password_file: cannot read {path}: {err.strerror}"]) from None


def with_credential(m: MqttConfig, credential: Path | None) -> MqttConfig:
    """Run by hand, use the password file the unit hands the service (LoadCredential=,
    agent.config.DEFAULT_CREDENTIAL) when nothing else gives one; under systemd
    $CREDENTIALS_DIRECTORY already does."""
    if (
        m.password_file is None
        and not os.environ.get("CREDENTIALS_DIRECTORY")
        and credential is not None
        and os.access(credential, os.R_OK)
        and _has_text(credential)
    ):
        return m.model_copy(update={"password_file": str(credential)})
    return m


def _has_text(path: Path) -> bool:
    try:
        return bool(path.read_text(encoding="utf-8", errors="replace").strip())
    except OSError:
        return False


def endpoint(cfg: MqttConfig) -> Endpoint:
    """The broker and credentials `cfg` names; ConfigError for a bad URL or an
    unreadable password file."""
    if not cfg.url:
        raise ConfigError(["mqtt.url: required to publish over MQTT"])
    host, port, tls, user, url_password = parse_mqtt_url(cfg.url)
    return Endpoint(host, port, tls, user or cfg.username, resolve_password(cfg, url_password))


def make_client(cfg: MqttConfig, where: Endpoint, client_id: str) -> mqtt.Client:
    """A paho client set up to reach `where` (credentials, TLS, protocol), not connected.

    Raises ConfigError when the TLS files cannot be loaded.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311,
    )
    if where.user is not None:
        client.username_pw_set(where.user, where.password)
    if where.tls:
        try:
            client.tls_set(ca_certs=cfg.ca_file, certfile=cfg.cert_file, keyfile=cfg.key_file)
        except (OSError, ValueError) as err:
            raise ConfigError([f"mqtt: TLS files cannot be loaded: {err}"]) from None
        client.tls_insecure_set(cfg.tls_insecure)
    return client
