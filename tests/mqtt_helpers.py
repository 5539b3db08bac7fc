"""A real paho subscriber used by the tests to see what reaches the broker."""

from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.helpers import wait_until


class Subscriber:
    """Collects every message on `topic` (retained ones included)."""

    def __init__(
        self, port: int, topic: str = "#", *, persistent_id: str | None = None, **auth: str
    ):
        """`persistent_id`: a session the broker keeps (and queues for) while we are away."""
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        if persistent_id:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=persistent_id,
                clean_session=False,
                protocol=mqtt.MQTTv311,
            )
            self.client.reconnect_delay_set(0.1, 1)
        else:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if auth:
            self.client.username_pw_set(auth["username"], auth.get("password"))
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("subscription not acknowledged")

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [
                (t, json.loads(p))
                for t, p, _ in self.messages
                if "/position/" in t or t.endswith("/events")
            ]

    def payloads(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def wait_for(self, predicate, timeout: float = 15.0) -> bool:
        return wait_until(lambda: predicate(self), timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
