"""The agent as a process: Beast TCP source served from the real recording -> mosquitto."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

from tests.conftest import REPO, shared_data
from tests.helpers import TcpServer, validate
from tests.mqtt_helpers import Subscriber


class BeastServer:
    """Serves a recording once to each client, then keeps the connection open."""

    def __init__(self, data: bytes):
        self.data = data
        self.clients: list[socket.socket] = []
        self.server = TcpServer(self._serve, name="beast-server").start()
        self.port = self.server.port

    def _serve(self, conn: socket.socket) -> None:
        self.clients.append(conn)
        conn.sendall(self.data)

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.server.close()


def test_run_publishes_schema_valid_positions_from_a_beast_feed(broker, tmp_path):
    server = BeastServer(shared_data("beast/traffic_sample_dump1090.bin").read_bytes())
    sub = Subscriber(broker.port, "adsb/v1/#")
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent",
            "run",
            "--source",
            f"beast://127.0.0.1:{server.port}",
            "--mqtt",
            broker.url,
            "--site",
            "strip-01",
            "--state-dir",
            str(tmp_path / "state"),
            "--all",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The recording arrives in one burst, so every frame has nearly the same receive
        # time; the decoder's speed check then lets the first checked fix through and
        # rejects later jumps (a real feed is paced by the air).
        got = sub.wait_for(lambda s: any(p["type"] == "position" for _, p in s.records()))
        assert got, agent.stderr.read() if agent.poll() is not None else "no positions"
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=20)
        assert agent.returncode == 0, err
        assert sub.wait_for(lambda s: s.payloads("adsb/v1/strip-01/status")[-1:] == [b"stopped"])
    finally:
        if agent.poll() is None:
            agent.kill()
        server.close()
    records = sub.records()
    for _topic, payload in records:
        validate(payload)
        assert payload["site"] == "strip-01"
    positions = [p for _, p in records if p["type"] == "position"]
    assert {p["icao"] for p in positions} == {"48520A"}
    assert all(40 < p["lat"] < 46 and -1 < p["lon"] < 4 for p in positions)  # near Toulouse
    assert sorted(p["seq"] for _, p in records) == list(range(1, len(records) + 1))
    events = [p["event"] for _, p in records if p["type"] == "event"]
    assert events[0] == "track_start"
    assert b"online" in sub.payloads("adsb/v1/strip-01/status")
    info = json.loads(sub.payloads("adsb/v1/strip-01/info")[-1])
    assert info["site"] == "strip-01" and info["filter"]["enabled"] is False
    assert "started: site strip-01" in err
    sub.close()
