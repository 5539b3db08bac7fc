"""A disk that stays full: records are still delivered, counted and shown in the status.

A real tmpfs filled to the last byte under the outbox, a real mosquitto, the real
publisher and the service monitor that writes the status file.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from agent.config import MqttConfig, build_config
from agent.outbox import Outbox
from agent.outputs.mqtt import MqttPublisher
from agent.pipeline import Pipeline
from agent.service import Notifier, ServiceMonitor, pipeline_probe
from tests.helpers import wait_until
from tests.mqtt_helpers import Subscriber


def _fill(path: Path) -> None:
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


@pytest.fixture
def tiny_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")  # CI runs as root
    mnt = tmp_path / "state"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _position(i: int) -> dict:
    return {"v": 1, "type": "position", "site": "strip-01", "icao": "E48A00", "n": i}


def test_records_are_delivered_and_the_status_says_why_while_the_disk_stays_full(tiny_fs, broker):
    sub = Subscriber(broker.port, "adsb/v1/strip-01/position/#")
    outbox = Outbox(tiny_fs / "outbox.sqlite", spill_max=1000)
    mqtt = MqttPublisher(MqttConfig(url=broker.url), "strip-01", outbox).start()
    pipeline = Pipeline(build_config({"site": {"name": "strip-01"}}), [mqtt])
    monitor = ServiceMonitor(pipeline_probe(pipeline, []), threading.Event(), Notifier({}))
    try:
        assert mqtt.wait_connected(10)
        for i in range(5):
            mqtt.publish(_position(i))
        _fill(tiny_fs / "filler")  # and it never frees up
        seqs = [mqtt.publish(_position(i)) for i in range(5, 40)]
        assert outbox.refusing and outbox.spilled > 0
        # Every record reaches the broker, the held ones from memory.
        assert sub.wait_for(lambda s: len(s.records()) >= 40), len(sub.records())
        got = sorted(p["seq"] for _, p in sub.records())
        assert got == list(range(1, 41)) and seqs[-1] == 40
        # Nothing waits any more: held rows were let go from memory, and acked rows are
        # deleted (through the reserve) or, if the full disk refuses even that, never resent.
        assert wait_until(lambda: outbox.depth == 0, 30), (outbox.depth, dict(outbox.counts))
        doc = monitor.check()
        link = doc["components"]["mqtt"]
        assert link["state"] == "red", link
        assert "disk refuses writes" in link["message"] and "free space" in link["message"]
        assert mqtt.link_health()["outbox_problem"] == outbox.problem()
        # Room comes back: every acknowledged row is really deleted from the disk.
        (tiny_fs / "filler").unlink()
        assert wait_until(lambda: not outbox.pending_acks and outbox.bytes == 0, 30), dict(
            outbox.counts
        )
    finally:
        mqtt.close()
        sub.close()
        outbox.close()
