"""The broker link: the one place a paho client is built.

The agent's publisher, `adsb-agent tail` and `adsb-agent check` must reach the broker
the same way, or a check would pass that the agent then fails: the same URL forms
(`mqtt[s]://[user:pass@]host[:port]`), the same password sources (URL, then
`mqtt.password_file` or `--mqtt-password-file`, then $ADSB_AGENT_MQTT_PASSWORD, then
systemd's `LoadCredential=mqtt-password`), the same TLS
settings, the same protocol (MQTT 5 or 3.1.1) and paho's version 2 callbacks. What
each does with the client (will, inflight cap, reconnect delays, callbacks, connect)
stays with it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import MqttConfig
from agent.errors import ConfigError
from agent.settings import unchecked_copy

# systemd LoadCredential= name for the broker password.
CREDENTIAL_NAME = "mqtt-password"
# The password by environment: unlike a URL on the command line, not shown by `ps`.
PASSWORD_ENV = "ADSB_AGENT_MQTT_PASSWORD"


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
    shape = "is not mqtt://host[:port] or mqtts://... (IPv6: mqtt://[::1]:1883)"
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # an unclosed "[" of an IPv6 address, and the like
        raise ConfigError([f"mqtt.url: {_redact(url)!r} {shape}"]) from None
    if parts.scheme not in ("mqtt", "mqtts") or not hostname:
        raise ConfigError([f"mqtt.url: {_redact(url)!r} {shape}"])
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError([f"mqtt.url: bad port in {_redact(url)!r}"]) from None
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return hostname, port, tls, user, password


def _redact(url: str) -> str:
    """The URL with its password (whatever lies between the user's ":" and "@") starred;
    done by hand because urlsplit fails on the malformed URLs this is for."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def resolve_password(cfg: MqttConfig, url_password: str | None) -> str | None:
    """URL password, else `password_file`, else $ADSB_AGENT_MQTT_PASSWORD, else the
    systemd credential, else None."""
    if url_password is not None:
        return url_password
    path = cfg.password_file
    if path is None and os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if path is None and os.environ.get("CREDENTIALS_DIRECTORY"):
        cred = Path(os.environ["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_NAME
        path = str(cred) if cred.exists() else None
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None  # empty: no password
    except PermissionError as err:
        raise ConfigError(
            [f"mqtt.password_file: cannot read {path}: {err.strerror} (run with sudo?)"]
        ) from None
    except OSError as err:
        raise ConfigError([f"mqtt.password_file: cannot read {path}: {err.strerror}"]) from None


def with_credential(m: MqttConfig, credential: Path | None) -> MqttConfig:
    """Run by hand, use the password file the unit hands the service (LoadCredential=,
    agent.config.DEFAULT_CREDENTIAL) when nothing else gives one; under systemd
    $CREDENTIALS_DIRECTORY already does."""
    if (
        m.password_file is None
        and not os.environ.get("CREDENTIALS_DIRECTORY")
        and not os.environ.get(PASSWORD_ENV)
        and credential is not None
        and os.access(credential, os.R_OK)
        and _has_text(credential)
    ):
        return unchecked_copy(m, password_file=str(credential))
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


def ask_password(where: Endpoint, *, interactive: bool | None = None) -> Endpoint:
    """At a terminal, ask for the password a URL with a user but no password lacks
    (`tail` and `check` by hand), rather than a password typed into the URL, where `ps`
    and the shell history show it. Not at a terminal (a service, a pipe): unchanged."""
    if where.user is None or where.password is not None:
        return where
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if not interactive:
        return where
    import getpass

    typed = getpass.getpass(f"MQTT password for {where.user} at {where}: ")
    return replace(where, password=typed or None)


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
