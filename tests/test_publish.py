"""MQTT publisher against a real mosquitto started by the test."""

from __future__ import annotations

import io
import json
import time
import zlib

from agent.config import MqttConfig, SiteConfig
from agent.outbox import Outbox
from agent.outputs.mqtt import MqttPublisher
from agent.outputs.mqtt_link import parse_mqtt_url
from agent.outputs.stdout import StdoutPublisher
from agent.records import event_record, position_record
from agent.schema import EventKind
from tests.conftest import Broker
from tests.helpers import strip_aircraft, validate
from tests.mqtt_helpers import Subscriber

SITE = SiteConfig(name="strip-01", lat=-15.6, lon=-56.1, elevation_ft=600)


def _publisher(url: str, tmp_path, **info) -> MqttPublisher:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    return MqttPublisher(MqttConfig(url=url), SITE.name, outbox, info=info).start()


def test_records_arrive_on_documented_topics_and_match_the_schema(broker, tmp_path):
    sub = Subscriber(broker.port, "adsb/v1/#")
    pub = _publisher(broker.url, tmp_path, receiver=[-15.6, -56.1])
    assert pub.wait_connected(10)
    records = [position_record(strip_aircraft(i), SITE, ("low", "light")) for i in range(20)]
    records.append(
        event_record(EventKind.TRACK_START, strip_aircraft(0), SITE, 1_767_225_601.0, ("low",))
    )
    for r in records:
        validate(r)
        pub.publish(r)
    assert pub.flush(10)
    assert sub.wait_for(lambda s: len(s.records()) == len(records))
    got = sub.records()
    assert sorted(p["seq"] for _, p in got) == list(range(1, len(records) + 1))
    for topic, payload in got:
        validate(payload)
        if payload["type"] == "position":
            assert topic == f"adsb/v1/strip-01/position/{payload['icao']}"
        else:
            assert topic == "adsb/v1/strip-01/events"
    assert sorted(json.dumps({**p, "seq": 0}, sort_keys=True) for _, p in got) == sorted(
        json.dumps({**r, "seq": 0}, sort_keys=True) for r in records
    )
    assert sub.payloads("adsb/v1/strip-01/status")[-1] == b"online"
    info = json.loads(sub.payloads("adsb/v1/strip-01/info")[-1])
    assert info["site"] == "strip-01" and info["receiver"] == [-15.6, -56.1]
    pub.close()
    assert sub.wait_for(lambda s: s.payloads("adsb/v1/strip-01/status")[-1:] == [b"stopped"])
    sub.close()


def test_broker_down_at_start_then_up_delivers_queued_records(tmp_path):
    b = Broker(tmp_path)
    pub = _publisher(b.url, tmp_path)
    records = [position_record(strip_aircraft(i), SITE, ("low",)) for i in range(5)]
    for r in records:
        pub.publish(r)
    assert not pub.connected.is_set()
    b.start()
    try:
        sub = Subscriber(b.port, "adsb/v1/+/position/#")
        assert pub.wait_connected(15)
        assert sub.wait_for(lambda s: len(s.records()) == 5)
        sub.close()
    finally:
        pub.close()
        b.stop()


def test_refused_credentials_are_reported_not_retried_silently(tmp_path):
    b = Broker(tmp_path, "allow_anonymous false\n").start()
    try:
        pub = _publisher(f"mqtt://nobody:wrong@127.0.0.1:{b.port}", tmp_path)
        deadline = time.monotonic() + 10
        while pub.refused_reason is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pub.refused_reason is not None
        assert pub.counts["connect_refused"] >= 1
        assert not pub.connected.is_set()
        pub.close()
    finally:
        b.stop()


def test_stdout_publisher_writes_one_json_object_per_line():
    buf = io.StringIO()
    pub = StdoutPublisher(buf)
    pub.publish(position_record(strip_aircraft(1), SITE, ("low",)))
    pub.publish(event_record(EventKind.TRACK_START, strip_aircraft(1), SITE, 1.0))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        validate(json.loads(line))


def test_mqtt_url_forms():
    assert parse_mqtt_url("mqtt://h") == ("h", 1883, False, None, None)
    assert parse_mqtt_url("mqtts://u:p%40ss@h:9000") == ("h", 9000, True, "u", "p@ss")


def test_health_is_retained_with_link_outbox_and_pipeline_figures(broker, tmp_path):
    sub = Subscriber(broker.port, "adsb/v1/strip-01/health")
    cfg = MqttConfig(url=broker.url, health_interval_s=1)
    pub = MqttPublisher(
        cfg, SITE.name, Outbox(tmp_path / "o.sqlite"), health=lambda: {"rates": {"frames": 1.5}}
    ).start()
    pub.publish(position_record(strip_aircraft(1), SITE, ("low",)))
    assert sub.wait_for(lambda s: len(s.payloads("adsb/v1/strip-01/health")) >= 1, 10)
    health = json.loads(sub.payloads("adsb/v1/strip-01/health")[-1])
    assert health["site"] == "strip-01" and health["rates"] == {"frames": 1.5}
    link = health["link"]
    assert link["connected"] is True and link["refused"] is None
    assert {"outbox_depth", "outbox_oldest_age_s", "outbox_dropped_full", "last_ack"} <= set(link)
    pub.close()
    late = Subscriber(broker.port, "adsb/v1/strip-01/health")  # retained: a new subscriber sees it
    assert late.wait_for(lambda s: len(s.payloads("adsb/v1/strip-01/health")) == 1, 5)
    late.close()
    sub.close()


def test_batched_positions_arrive_compressed_with_every_seq(broker, tmp_path):
    sub = Subscriber(broker.port, "adsb/v1/#")
    cfg = MqttConfig(url=broker.url, batch_s=0.5)
    pub = MqttPublisher(cfg, SITE.name, Outbox(tmp_path / "o.sqlite")).start()
    for i in range(50):
        pub.publish(position_record(strip_aircraft(i % 5), SITE, ("low",)))
    pub.publish(event_record(EventKind.TRACK_START, strip_aircraft(0), SITE, 1_767_225_601.0))
    assert pub.flush(10)
    batches = sub.payloads("adsb/v1/strip-01/positions")
    assert 1 <= len(batches) <= 3
    records = [r for b in batches for r in json.loads(zlib.decompress(b))]
    for r in records:
        validate(r)
    assert sorted(r["seq"] for r in records) == list(range(1, 51))
    assert sub.wait_for(lambda s: len(s.payloads("adsb/v1/strip-01/events")) == 1)
    assert pub.counts["batches"] == len(batches)
    pub.close()
    sub.close()


def test_mqtt_311_option_delivers_too(broker, tmp_path):
    sub = Subscriber(broker.port, "adsb/v1/+/position/#")
    cfg = MqttConfig(url=broker.url, protocol="3.1.1")
    pub = MqttPublisher(cfg, SITE.name, Outbox(tmp_path / "o.sqlite")).start()
    for i in range(5):
        pub.publish(position_record(strip_aircraft(i), SITE, ("low",)))
    assert pub.flush(10)
    assert sub.wait_for(lambda s: len(s.records()) == 5)
    pub.close()
    sub.close()


def test_a_closed_stdout_beside_mqtt_is_left_behind_not_fatal(caplog):
    """`run --stdout | head` with a broker: the feed to the broker must go on."""
    import contextlib
    import os

    import pytest

    from agent.errors import OutputClosed

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left
    stream = os.fdopen(write_end, "w", buffering=1)
    try:
        secondary = StdoutPublisher(stream, essential=False)
        secondary.publish({"type": "event", "n": 1})
        secondary.publish({"type": "event", "n": 2})
        assert secondary.closed and secondary.counts["not_printed_closed"] == 2
        assert "closed by its reader" in caplog.text
        secondary.close()
        only = StdoutPublisher(stream)  # stdout is what the command is for: it ends
        with pytest.raises(OutputClosed):
            only.publish({"type": "event", "n": 3})
    finally:
        with contextlib.suppress(BrokenPipeError):
            stream.close()
