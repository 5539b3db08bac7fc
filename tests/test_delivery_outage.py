"""No committed record is lost across link cuts, broker restarts and agent kills."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from agent.config import MqttConfig
from agent.outbox import Outbox
from agent.outputs.mqtt import MqttPublisher
from tests.conftest import REPO, Broker
from tests.mqtt_helpers import Subscriber
from tests.netproxy import CuttableProxy


def _rec(i: int) -> dict:
    return {"type": "position", "site": "site-01", "icao": f"E4{i % 20:04X}", "n": i}


def _seqs(sub: Subscriber) -> list[int]:
    return [json.loads(p)["seq"] for t, p, _ in list(sub.messages) if "/position/" in t]


def _feed(pub: MqttPublisher, n: int, gap: float) -> threading.Thread:
    def run() -> None:
        for i in range(n):
            pub.publish(_rec(i))
            time.sleep(gap)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_link_cut_repeatedly_every_committed_record_arrives(broker, tmp_path):
    proxy = CuttableProxy(broker.port)
    sub = Subscriber(broker.port, "adsb/v1/+/position/#")
    pub = MqttPublisher(
        MqttConfig(url=f"mqtt://127.0.0.1:{proxy.port}", drain_rate=2000),
        "site-01",
        Outbox(tmp_path / "o.sqlite"),
    ).start()
    n, cuts = 600, 4
    feeder = _feed(pub, n, 0.005)
    for _ in range(cuts):
        assert pub.wait_connected(10)
        time.sleep(0.2)
        proxy.down = True
        proxy.cut()
        time.sleep(0.3)
        proxy.down = False
    feeder.join()
    assert pub.flush(30), pub.link_health()
    assert sub.wait_for(lambda s: set(_seqs(s)) == set(range(1, n + 1)), 10)
    dupes = sum(c - 1 for c in Counter(_seqs(sub)).values())
    assert dupes <= cuts * pub.cfg.max_inflight, dupes
    assert pub.counts["disconnects"] >= cuts
    pub.close()
    sub.close()
    proxy.close()


def test_broker_down_then_killed_mid_stream_and_restarted(tmp_path):
    b = Broker(tmp_path, persistent=True)
    pub = MqttPublisher(
        MqttConfig(url=b.url, drain_rate=2000), "site-01", Outbox(tmp_path / "o.sqlite")
    ).start()
    for i in range(100):  # broker down at start: committed, waiting
        pub.publish(_rec(i))
    b.start()
    sub = Subscriber(b.port, "adsb/v1/+/position/#", persistent_id="central-1")
    feeder = _feed(pub, 400, 0.005)
    time.sleep(0.8)
    b.stop()  # mid-stream; the subscriber's session is saved by the broker
    time.sleep(1.0)
    b.start()
    feeder.join()
    assert pub.flush(30), pub.link_health()
    assert sub.wait_for(lambda s: set(_seqs(s)) == set(range(1, 501)), 15)
    pub.close()
    sub.close()
    b.stop()


def test_agent_killed_at_random_moments_loses_nothing_committed(broker, tmp_path):
    """SIGKILL while records flow; restart; every committed (seq, id) arrives, and no seq
    is ever given to two different records."""
    sub = Subscriber(broker.port, "adsb/v1/+/position/#")
    rng = random.Random(7)
    committed: dict[int, str] = {}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for run in range(4):
        last = run == 3
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.outbox_driver",
                str(tmp_path),
                broker.url,
                "150" if last else "100000",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        deadline = time.monotonic() + (60 if last else rng.uniform(0.5, 1.5))
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("committed"):
                _, seq, rid = line.split()
                assert committed.setdefault(int(seq), rid) == rid, "seq reused"
            if line.startswith("done") or time.monotonic() > deadline:
                break
        if not last:
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    got: dict[int, str] = {}
    assert sub.wait_for(lambda s: set(_seqs(s)) >= set(committed), 20)
    for _t, p, _ in list(sub.messages):
        rec = json.loads(p)
        assert got.setdefault(rec["seq"], rec["id"]) == rec["id"], "one seq, two records"
    assert all(got[s] == rid for s, rid in committed.items())
    assert Outbox(Path(tmp_path) / "outbox.sqlite").depth == 0
    sub.close()
