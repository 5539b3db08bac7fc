"""One record the broker refuses as too large must not stop a site (issue 14).

A real mosquitto whose config limits message size: `message_size_limit` (mosquitto 2.0
answers PUBACK 0x95, which paho cannot parse: it drops the link) or `max_packet_size`
(announced in the CONNACK; mosquitto disconnects a client that exceeds it).
"""

from __future__ import annotations

import json
import logging
import random

import pytest

from agent.config import MqttConfig
from agent.health import AMBER, HealthJudge, Reading
from agent.outbox import Outbox
from agent.outputs.mqtt import MqttPublisher
from agent.records import position_record
from tests.conftest import Broker
from tests.helpers import LogLines, strip_aircraft
from tests.mqtt_helpers import Subscriber
from tests.test_publish import SITE


def _records() -> list[dict]:
    records = [position_record(strip_aircraft(i), SITE, ("low",)) for i in range(20)]
    big = dict(records[7])
    big["tags"] = ["x" * 50] * 10  # about 1.1 kB; the others about 600 bytes
    records[7] = big
    return records


@pytest.mark.parametrize("limit", ["message_size_limit 800", "max_packet_size 800"])
def test_a_record_too_large_for_the_broker_is_set_aside_and_the_rest_flows(tmp_path, limit):
    broker = Broker(tmp_path, f"{limit}\nallow_anonymous true\n").start()
    sub = Subscriber(broker.port, "adsb/v1/#")
    pub = MqttPublisher(
        MqttConfig(url=broker.url), SITE.name, Outbox(tmp_path / "outbox.sqlite")
    ).start()
    try:
        assert pub.wait_connected(10)
        records = _records()
        said = LogLines()
        logging.getLogger("agent.mqtt").addHandler(said)
        try:
            seqs = [pub.publish(r) for r in records]
            assert pub.flush(30), (dict(pub.counts), pub.outbox.depth)
        finally:
            logging.getLogger("agent.mqtt").removeHandler(said)
        # Those sent before the link dropped may arrive twice (QoS 1): count seqs.
        assert sub.wait_for(lambda s: len({p["seq"] for _, p in s.records()}) == len(records) - 1)
        got = sorted({p["seq"] for _, p in sub.records()})
        assert got == [s for s in seqs if s != seqs[7]]
        state = pub.link_state()
        assert state.connected and state.set_aside == 1
        assert state.set_aside_last.startswith(f"seq {seqs[7]}, ")
        size = len(json.dumps({**records[7], "seq": seqs[7]}, separators=(",", ":")))
        assert abs(int(state.set_aside_last.split(", ")[1].split()[0]) - size) < 50
        refusals = [line for line in said.lines if "set aside" in line]
        assert len(refusals) == 1 and f"seq {seqs[7]} " in refusals[0]
        # The status shows it: amber, with the seq, not green and silent.
        judge = HealthJudge("s", stall_s=60, started=0.0)
        status = judge.status(
            Reading({}, {}, links={"mqtt": state}),
            1.0,
            0.0,
            stalled=False,
            wall=1.0,
            expires_s=10,
            watchdog_s=None,
        )
        link = status["components"]["mqtt"]
        assert link["state"] == AMBER and f"seq {seqs[7]}" in link["message"]
    finally:
        pub.close(1)
        sub.close()
        broker.stop()


def test_a_batch_too_large_goes_again_row_by_row(tmp_path):
    broker = Broker(tmp_path, "message_size_limit 800\nallow_anonymous true\n").start()
    sub = Subscriber(broker.port, "adsb/v1/#")
    cfg = MqttConfig(url=broker.url, batch_s=0.2)
    pub = MqttPublisher(cfg, SITE.name, Outbox(tmp_path / "outbox.sqlite")).start()
    try:
        assert pub.wait_connected(10)
        # Random callsigns: a batch compresses to well over 800 bytes.
        records = []
        for i in range(30):
            r = position_record(strip_aircraft(i), SITE, ("low",))
            r["callsign"] = f"{i * 7919 % 99991:05d}{i:03d}"
            records.append(r)
        # Incompressible: too large even inside a compressed batch.
        records[3]["tags"] = [random.Random(3).randbytes(1200).hex()]
        seqs = [pub.publish(r) for r in records]
        assert pub.flush(60), (dict(pub.counts), pub.outbox.depth)
        assert pub.counts["set_aside"] == 1 and pub.counts["acked"] == len(records) - 1
        assert pub.link_state().set_aside_last.startswith(f"seq {seqs[3]}, ")
    finally:
        pub.close(1)
        sub.close()
        broker.stop()
