"""Where selected records go: MQTT (paho-mqtt 2.x, MQTT 5, QoS 1) and JSON lines.

Publishers share one small interface so the pipeline hands each record to a list of
them without knowing which are there (Frigate's communicators, rtl_433's outputs).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import Counter
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import __version__
from agent.config import MqttConfig
from agent.errors import ConfigError
from agent.records import topic_for

log = logging.getLogger("agent.publish")

# Seconds the broker waits after an unclean disconnect before publishing `offline`:
# a cellular hiccup of a few seconds should not flap the site's status.
WILL_DELAY_S = 30


def to_json(record: dict[str, Any]) -> str:
    """Compact JSON, the form both stdout and MQTT carry."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


class Publisher(Protocol):
    counts: Counter[str]

    def publish(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class StdoutPublisher:
    """One JSON object per line; the stream `replay` and `demo` print."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stdout
        self.counts: Counter[str] = Counter()

    def publish(self, record: dict[str, Any]) -> None:
        self.stream.write(to_json(record) + "\n")
        self.counts["published"] += 1

    def close(self) -> None:
        self.stream.flush()


def parse_mqtt_url(url: str) -> tuple[str, int, bool, str | None, str | None]:
    """`mqtt[s]://[user:pass@]host[:port]` -> host, port, tls, user, password."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError([f"mqtt.url: {url!r} is not mqtt://host[:port] or mqtts://..."])
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError([f"mqtt.url: bad port in {url!r}"]) from None
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, port, tls, user, password


class MqttPublisher:
    """Publishes records to `<prefix>/<site>/...` with a retained status topic.

    paho's network thread runs the connection (connect_async + loop_start keeps
    retrying while the broker is down). Records published while offline wait in
    paho's bounded in-memory queue; what does not fit is counted as dropped.
    (The disk outbox that survives restarts is a later stage.)
    """

    def __init__(self, cfg: MqttConfig, site: str, info: dict[str, Any] | None = None):
        if cfg.url is None:
            raise ConfigError(["mqtt.url: required to publish over MQTT"])
        host, port, tls, user, password = parse_mqtt_url(cfg.url)
        self.site = site
        self.prefix = cfg.topic_prefix
        self.status_topic = f"{self.prefix}/{site}/status"
        self.info_topic = f"{self.prefix}/{site}/info"
        self.info = info or {}
        self.counts: Counter[str] = Counter()
        self.connected = threading.Event()
        self.refused_reason: str | None = None
        self._v5 = cfg.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or f"adsb-agent-{site}",
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
        )
        if user is not None:
            client.username_pw_set(user, password)
        if tls:
            client.tls_set(ca_certs=cfg.ca_file)
            client.tls_insecure_set(cfg.tls_insecure)
        will_props = None
        if self._v5:
            will_props = Properties(PacketTypes.WILLMESSAGE)
            will_props.WillDelayInterval = WILL_DELAY_S
        client.will_set(self.status_topic, "offline", qos=1, retain=True, properties=will_props)
        client.max_inflight_messages_set(cfg.max_inflight)
        client.max_queued_messages_set(cfg.max_queued)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        client.connect_async(host, port, keepalive=cfg.keepalive_s)
        client.loop_start()
        self._endpoint = f"{host}:{port}"

    # paho callbacks run on its network thread: keep them short and never raise.
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.refused_reason = str(reason_code)
            self.counts["connect_refused"] += 1
            log.error("MQTT broker %s refused the connection: %s", self._endpoint, reason_code)
            return
        self.refused_reason = None
        self.counts["connects"] += 1
        log.info("MQTT connected to %s", self._endpoint)
        client.publish(self.status_topic, "online", qos=1, retain=True)
        info = {"version": __version__, "site": self.site, **self.info}
        client.publish(self.info_topic, json.dumps(info), qos=1, retain=True)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set():
            log.warning("MQTT disconnected from %s: %s; retrying", self._endpoint, reason_code)
        self.connected.clear()
        self.counts["disconnects"] += 1

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.counts["publish_refused"] += 1
        else:
            self.counts["acked"] += 1

    def publish(self, record: dict[str, Any]) -> None:
        info = self._client.publish(topic_for(record, self.prefix), to_json(record), qos=1)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self.counts["dropped_queue_full"] += 1
        else:
            self.counts["published"] += 1

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until every published record is acknowledged (or timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            settled = self.counts["acked"] + self.counts["publish_refused"]
            if settled >= self.counts["published"]:
                return True
            time.sleep(0.05)
        return False

    def close(self, timeout: float = 5.0) -> None:
        """Publish `stopped`, wait for acknowledgements, disconnect cleanly."""
        if self.connected.is_set():
            self.flush(timeout)
            msg = self._client.publish(self.status_topic, "stopped", qos=1, retain=True)
            try:
                msg.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()
