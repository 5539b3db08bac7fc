"""MQTT delivery of the outbox (paho-mqtt 2.x, MQTT 5 by default, QoS 1).

Records are committed to the Outbox first; a named thread (`mqtt-publisher`) sends
rows the DeliveryQueue picks, keeps its own cap on messages in flight (paho ignores the
broker's Receive Maximum), and deletes a row only when its PUBACK says success. paho's
network thread only sets flags and appends acknowledgements: no database work and no
exceptions escape its callbacks.

Status topic: retained `online` after every connect, `stopped` on a clean exit, and a
last will `offline` sent by the broker `mqtt.will_delay_s` after the link dies.

A message the broker refuses for itself (too large for `message_size_limit` or
`max_packet_size`) would otherwise be re-sent on every reconnect forever, and nothing
behind it delivered. It is set aside (its rows deleted from the outbox, counted, logged
once, shown in the link state) when the broker says so (PUBACK or DISCONNECT 0x95, PUBACK
0x97), when it would exceed the Maximum Packet Size the broker announced, or when the
link dropped POISON_STRIKES times in a row with it the oldest unacknowledged message
(mosquitto 2.0's PUBACK 0x95 is a malformed packet to paho, which disconnects). A
refused batch is sent again row by row; what was refused as too large teaches a size
limit applied before sending.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import __version__
from agent.config import MqttConfig
from agent.outbox import Outbox, Row
from agent.outputs import mqtt_link, topics
from agent.outputs.base import LinkState, Output
from agent.outputs.delivery import DeliveryQueue

# The name operators know from the journal (`agent.mqtt: MQTT link to ... lost`).
log = logging.getLogger("agent.mqtt")

# After the broker refuses a publish (e.g. 0x87 not authorised), wait this long before
# trying again: retrying at once would be a storm of refusals on a paid link.
REFUSED_RETRY_S = 300.0
# How often rows held in memory (full disk) are retried on disk.
UPKEEP_INTERVAL_S = 5.0
# How often rows past the outbox age limit are dropped.
EXPIRE_INTERVAL_S = 60.0
# Most position rows in one batch message (about 0.5 MB of JSON before compression).
BATCH_MAX_ROWS = 1000
# Disconnects in a row with the same message oldest unacknowledged that make it the
# cause (a link that merely drops is very unlikely to do so that often between acks).
POISON_STRIKES = 3
# Reason codes that refuse one message for itself: Packet too large, Quota exceeded.
_TOO_LARGE, _QUOTA = 0x95, 0x97
_MESSAGE_REFUSALS = frozenset((_TOO_LARGE, _QUOTA))


class MqttPublisher(Output):
    """Sends outbox rows to `<prefix>/<site>/...` and reports link health.

    `publish()` is called from the pipeline thread and only commits to the outbox;
    everything else happens on the publisher thread started by `start()`.
    """

    def __init__(
        self,
        cfg: MqttConfig,
        site: str,
        outbox: Outbox,
        *,
        info: dict[str, Any] | None = None,
        health: Callable[[], dict[str, Any]] | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
    ):
        where = mqtt_link.endpoint(cfg)
        self.cfg = cfg
        self.site = site
        self.outbox = outbox
        self.topics = topics.SiteTopics(cfg.topic_prefix, site)
        self.info = {"version": __version__, "site": site, **(info or {})}
        self.health = health
        self.counts: Counter[str] = Counter()
        self.connected = threading.Event()
        self.refused_reason: str | None = None
        self.connect_error: str | None = None
        self.publish_refused: str | None = None
        self.last_ack: float | None = None
        self._endpoint = str(where)
        self._v5 = cfg.protocol == "5"
        self._acks: deque[tuple[int, bool, str, int]] = deque()
        self._inflight: dict[int, list[int]] = {}  # message id -> outbox seqs it carries
        self._inflight_meta: dict[int, tuple[str, int]] = {}  # message id -> topic, bytes
        # Refused messages: strikes are kept by paho's thread, which drops the message
        # from paho's resend queue and hands its id to the publisher thread here.
        self._suspect: tuple[int | None, int] = (None, 0)  # oldest unacked mid, strikes
        self._refused_mids: deque[tuple[int, str]] = deque()
        self._max_packet: int | None = None  # Maximum Packet Size from the CONNACK
        self._max_payload: int | None = None  # learned: the smallest payload refused
        self._unbatched: set[int] = set()  # rows of a refused batch: sent one by one
        self.set_aside_last: str | None = None
        self._batch: list[Row] = []
        self._batch_started = 0.0
        self._epoch = 0
        # The agent's one stop event: once it is set and close() is called, the thread
        # sends what it can within `drain_s` (close()'s timeout) and ends.
        self._stop = stop if stop is not None else threading.Event()
        self.drain_s = 5.0
        self._closing = False  # close() was called: drain, then end the thread
        self.clock = clock
        self._wake = threading.Event()
        self._queue = DeliveryQueue(outbox, cfg.drain_rate)
        self._paused_until = 0.0
        self._started = clock()
        self._client = self._make_client(where)
        self._client.connect_async(where.host, where.port, keepalive=cfg.keepalive_s)
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)

    def _make_client(self, where: mqtt_link.Endpoint) -> mqtt.Client:
        cfg = self.cfg
        client = mqtt_link.make_client(cfg, where, cfg.client_id or f"adsb-agent-{self.site}")
        will_props = None
        if self._v5:
            will_props = Properties(PacketTypes.WILLMESSAGE)
            will_props.WillDelayInterval = cfg.will_delay_s
        client.will_set(self.topics.status, "offline", qos=1, retain=True, properties=will_props)
        # One more than our own cap so paho never holds back a message we released.
        client.max_inflight_messages_set(cfg.max_inflight + 4)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    # -- paho network thread: flags and queues only -------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            if self.refused_reason != str(reason_code):
                log.error("MQTT broker %s refused the connection: %s", self._endpoint, reason_code)
            self.refused_reason = str(reason_code)
            self.counts["connect_refused"] += 1
            return
        self.refused_reason = None
        self.connect_error = None
        self.counts["connects"] += 1
        self._max_packet = getattr(properties, "MaximumPacketSize", None)
        mid, strikes = self._suspect
        if mid is not None and strikes >= POISON_STRIKES:
            # Before paho re-sends its unacknowledged messages (right after this call).
            _forget_message(client, mid)
            self._refused_mids.append((mid, f"the link dropped {strikes} times sending it"))
            self._suspect = (None, 0)
        log.info("MQTT connected to %s", self._endpoint)
        client.publish(self.topics.status, "online", qos=1, retain=True)
        client.publish(self.topics.info, json.dumps(self.info), qos=1, retain=True)
        self._epoch += 1
        self.connected.set()
        self._wake.set()

    def _on_connect_fail(self, client, userdata) -> None:
        # paho calls this inside its `except OSError:` block: the cause is still current.
        err = sys.exc_info()[1]
        reason = str(err) if err is not None else "connection failed"
        if reason != self.connect_error:
            hint = " (check mqtt.ca_file)" if "CERTIFICATE_VERIFY_FAILED" in reason else ""
            log.warning(
                "MQTT broker %s: cannot connect: %s%s; retrying with backoff",
                self._endpoint,
                reason,
                hint,
            )
            self.connect_error = reason
        self.counts["connect_failed"] += 1

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set() and not self._stop.is_set():
            log.warning(
                "MQTT link to %s lost (%s); records wait in the outbox", self._endpoint, reason_code
            )
        self.connected.clear()
        self.counts["disconnects"] += 1
        oldest = _oldest_unacked(client)
        mid, strikes = self._suspect
        strikes = strikes + 1 if oldest == mid else 1
        if getattr(reason_code, "value", None) == _TOO_LARGE:
            strikes = POISON_STRIKES  # the broker said so
        self._suspect = (oldest, strikes) if oldest is not None else (None, 0)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        value = getattr(reason_code, "value", 0)
        self._acks.append((mid, not reason_code.is_failure, str(reason_code), value))
        self._wake.set()

    # -- pipeline thread ----------------------------------------------------------------

    def publish(self, record: dict[str, Any]) -> int:
        """Commit a record to the outbox (or hold it there while the disk is full); the
        publisher thread sends it. Returns its seq."""
        seq = self.outbox.put(topics.topic_for(record, self.cfg.topic_prefix), record)
        self.counts["committed"] += 1
        self._wake.set()
        return seq

    # -- publisher thread ---------------------------------------------------------------

    def start(self) -> MqttPublisher:
        self._client.loop_start()
        self._thread.start()
        return self

    def _run(self) -> None:
        seen_epoch = 0
        next_health = time.monotonic() + 2.0
        next_expire = next_upkeep = 0.0
        drain_until: float | None = None
        while True:
            # Stopping: the pipeline may still hand over its last records until the
            # App closes this output; from then on, send what is left for a while.
            if self._stop.is_set() and self._closing:
                if drain_until is None:
                    drain_until = time.monotonic() + self.drain_s
                if self.drained() or not self.connected.is_set() or time.monotonic() >= drain_until:
                    break
            self._wake.wait(0.1)
            self._wake.clear()
            self._settle_acks()
            now = time.monotonic()
            if now >= next_upkeep:  # held rows to disk, acks a full disk refused
                self.outbox.maintain()
                next_upkeep = now + UPKEEP_INTERVAL_S
            if now >= next_expire:
                self.outbox.expire()
                next_expire = now + EXPIRE_INTERVAL_S
            if not self.connected.is_set() or now < self._paused_until:
                continue
            if self._epoch != seen_epoch or self._paused_until:
                seen_epoch = self._epoch
                self._paused_until = 0.0
                self._batch.clear()  # not in flight: the reset finds these rows again
                self._queue.reset([seq for seqs in self._inflight.values() for seq in seqs])
            self._send(self.cfg.max_inflight - len(self._inflight))
            if now >= next_health:
                self._publish_health()
                next_health = now + self.cfg.health_interval_s

    def _send(self, room: int) -> None:
        """Publish what the delivery queue releases; with batching on, positions are
        gathered for `batch_s` and go as one compressed message."""
        if self.cfg.batch_s <= 0:
            for row in self._queue.next_rows(room, exclude=self.outbox.pending_acks):
                self._publish(row.topic, row.payload, row.created, [row.seq])
            return
        gather = max(0, BATCH_MAX_ROWS - len(self._batch))
        for row in self._queue.next_rows(gather, exclude=self.outbox.pending_acks):
            # Events are rare and go at once; so do the rows of a refused batch.
            if not topics.is_position(row.topic) or row.seq in self._unbatched:
                self._publish(row.topic, row.payload, row.created, [row.seq])
                continue
            if not self._batch:
                self._batch_started = time.monotonic()
            self._batch.append(row)
        due = time.monotonic() - self._batch_started >= self.cfg.batch_s
        if self._batch and room > 0 and (due or len(self._batch) >= BATCH_MAX_ROWS):
            rows, self._batch = self._batch, []
            payload = zlib.compress(b"[" + b",".join(r.payload for r in rows) + b"]", 9)
            if self._too_large(self.topics.positions, payload) is not None:
                for r in rows:  # one by one: only those too large on their own go aside
                    self._publish(r.topic, r.payload, r.created, [r.seq])
                return
            created = min(r.created for r in rows)
            self._publish(self.topics.positions, payload, created, [r.seq for r in rows])
            self.counts["batches"] += 1

    def _publish(self, topic: str, payload: bytes, created: float, seqs: list[int]) -> None:
        why = self._too_large(topic, payload)
        if why is not None and len(seqs) == 1:
            self._set_aside(seqs[0], topic, len(payload), why)
            return
        props = None
        if self._v5:
            props = Properties(PacketTypes.PUBLISH)
            left = self.outbox.max_age_s - (self.outbox.now() - created)
            props.MessageExpiryInterval = max(1, int(left))
        info = self._client.publish(topic, payload, qos=1, properties=props)
        self._inflight[info.mid] = seqs
        self._inflight_meta[info.mid] = (topic, len(payload))
        self.counts["sent"] += len(seqs)

    def _too_large(self, topic: str, payload: bytes) -> str | None:
        """Why the broker would refuse this message for its size, if it would."""
        if (
            self._max_packet is not None
            and _packet_bytes(topic, payload, self._v5) > self._max_packet
        ):
            return f"larger than the broker's maximum packet size ({self._max_packet} bytes)"
        if self._max_payload is not None and len(payload) >= self._max_payload:
            return f"not smaller than a message the broker refused ({self._max_payload} bytes)"
        return None

    def _refused_message(self, mid: int, why: str) -> None:
        """The broker refused message `mid` for itself: set its record aside, or send a
        batch again row by row; it is no longer in flight."""
        seqs = self._inflight.pop(mid, None)
        topic, size = self._inflight_meta.pop(mid, ("", 0))
        if seqs is None:  # status, info or health: resent later, if it fits
            self.counts["refused_other"] += 1
            return
        if size and (self._max_payload is None or size < self._max_payload):
            self._max_payload = size
            # Others as large, already in flight, would each take their own strikes.
            for other, (_, other_size) in list(self._inflight_meta.items()):
                if other_size >= size and len(self._inflight[other]) == 1:
                    _forget_message(self._client, other)
                    self._refused_mids.append(
                        (other, f"not smaller than a message the broker refused ({size} bytes)")
                    )
        if len(seqs) > 1:
            self._unbatched.update(seqs)
            self.counts["batches_refused"] += 1
            log.warning(
                "MQTT broker %s refused a batch of %d records (%d bytes): %s; sending them"
                " one by one",
                self._endpoint,
                len(seqs),
                size,
                why,
            )
            return
        self._set_aside(seqs[0], topic, size, why)

    def _set_aside(self, seq: int, topic: str, size: int, why: str) -> None:
        """Take one record out of delivery so that the rest flows (its row is deleted)."""
        self.outbox.ack([seq])
        self._unbatched.discard(seq)
        self.counts["set_aside"] += 1
        self.set_aside_last = f"seq {seq}, {size} bytes on {topic}: {why}"
        n = self.counts["set_aside"]
        if n <= 10 or n % 1000 == 0:
            log.error(
                "MQTT broker %s refuses record seq %d (%d bytes on %s): %s; set aside so "
                "that the rest is delivered (%d so far; check the broker's "
                "message_size_limit / max_packet_size)",
                self._endpoint,
                seq,
                size,
                topic,
                why,
                n,
            )

    def _settle_acks(self) -> None:
        while self._refused_mids:
            self._refused_message(*self._refused_mids.popleft())
        done: list[int] = []
        while self._acks:
            mid, ok, reason, value = self._acks.popleft()
            if not ok and value in _MESSAGE_REFUSALS:
                self._refused_message(mid, f"refused: {reason}")
                continue
            seqs = self._inflight.pop(mid, None)
            self._inflight_meta.pop(mid, None)
            if seqs is None:
                continue  # status, info or health: not outbox rows
            if ok:
                done.extend(seqs)
                continue
            self.counts["refused"] += 1
            if self.publish_refused != reason:
                log.error(
                    "MQTT broker refused a publish under %s/: %s; records are kept, "
                    "retrying in %d s (check this site's ACL)",
                    self.topics.base,
                    reason,
                    REFUSED_RETRY_S,
                )
            self.publish_refused = reason
            self._paused_until = time.monotonic() + REFUSED_RETRY_S
        if done:
            if self._unbatched:
                self._unbatched.difference_update(done)
            self.outbox.ack(done)
            self.counts["acked"] += len(done)
            self.last_ack = self.clock()
            if self.publish_refused is not None and not self._paused_until:
                self.publish_refused = None

    def link_state(self) -> LinkState:
        """The link's state for the service monitor and the page, every few seconds."""
        return LinkState(
            connected=self.connected.is_set(),
            refused=self.refused_reason or self.publish_refused,
            connect_error=self.connect_error,
            outbox_depth=self.outbox.depth,
            outbox_problem=self.outbox.problem(),
            outbox_oldest_age_s=self._oldest_age_s(),
            set_aside=self.counts["set_aside"],
            set_aside_last=self.set_aside_last,
        )

    def _oldest_age_s(self) -> float | None:
        oldest = self.outbox.oldest_created()
        return None if oldest is None else round(self.outbox.now() - oldest, 1)

    def link_health(self) -> dict[str, Any]:
        """The link and outbox part of the health payload."""
        return {
            "connected": self.connected.is_set(),
            "refused": self.refused_reason or self.publish_refused,
            "connect_error": self.connect_error,
            "last_ack": None if self.last_ack is None else round(self.last_ack, 3),
            "in_flight": sum(len(seqs) for seqs in self._inflight.values()),
            "outbox_depth": self.outbox.depth,
            "outbox_bytes": self.outbox.bytes,
            "outbox_oldest_age_s": self._oldest_age_s(),
            "outbox_dropped_full": self.outbox.counts["dropped_full"],
            "outbox_dropped_expired": self.outbox.counts["dropped_expired"],
            "outbox_spilled": self.outbox.spilled,
            "outbox_problem": self.outbox.problem(),
            "backlog_aircraft": self._queue.backlog_aircraft,
            "set_aside": self.counts["set_aside"],
            "set_aside_last": self.set_aside_last,
        }

    def _publish_health(self) -> None:
        payload = {
            "v": 1,
            "site": self.site,
            "ts": round(self.clock(), 3),
            "uptime_s": round(self.clock() - self._started, 1),
            "link": self.link_health(),
        }
        if self.health is not None:
            try:
                payload.update(self.health())
            except Exception:  # health must never stop delivery
                log.exception("building the health payload failed")
        body = json.dumps(payload).encode()
        why = self._too_large(self.topics.health, body)
        if why is not None:
            if not self.counts["health_too_large"]:
                log.warning("MQTT health message not sent (%d bytes): %s", len(body), why)
            self.counts["health_too_large"] += 1
            return
        self._client.publish(self.topics.health, body, qos=1, retain=True)

    # -- any thread ---------------------------------------------------------------------

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def drained(self) -> bool:
        """True when every committed record has been acknowledged."""
        return self.outbox.depth == 0 and not self._inflight

    def flush(self, timeout: float) -> bool:
        """Wait until the outbox is empty (everything acknowledged), or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.drained():
                return True
            self._wake.set()
            time.sleep(0.02)
        return self.drained()

    def close(self, timeout: float = 5.0) -> None:
        """Send what can be sent within `timeout`, say `stopped`, disconnect.

        Rows not acknowledged stay in the outbox for the next start.
        """
        self.drain_s = timeout
        self._closing = True
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.drain_s + 2.0)
        self._settle_acks()
        if self.connected.is_set():
            msg = self._client.publish(self.topics.status, "stopped", qos=1, retain=True)
            try:
                msg.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()


def _packet_bytes(topic: str, payload: bytes, v5: bool) -> int:
    """Size of the QoS 1 PUBLISH packet of this message, as the broker counts it
    (properties: at most a Message Expiry Interval)."""
    remaining = 2 + len(topic.encode()) + 2 + (6 if v5 else 0) + len(payload)
    length_bytes = (
        1 if remaining < 128 else 2 if remaining < 16_384 else 3 if remaining < 2**21 else 4
    )
    return 1 + length_bytes + remaining


# paho keeps unacknowledged QoS 1 messages in Client._out_messages (message id -> message,
# oldest first) and re-sends them all after each reconnect; it offers no public way to
# look at the oldest or to drop one (drop_out_messages drops them all).
def _oldest_unacked(client: mqtt.Client) -> int | None:
    with client._out_message_mutex:
        return next(iter(client._out_messages), None)


def _forget_message(client: mqtt.Client, mid: int) -> None:
    with client._out_message_mutex:
        client._out_messages.pop(mid, None)
