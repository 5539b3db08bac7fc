"""systemd contract: sd_notify datagrams on a real socket, watchdog only on progress,
the status file, and the unit itself verified by systemd-analyze."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent import status as status_cmd
from agent.config import build_config
from agent.frame import Frame
from agent.pipeline import Pipeline
from agent.service import Notifier, ServiceMonitor, pipeline_probe
from tests import sandbox
from tests.conftest import REPO
from tests.helpers import TcpServer, wait_until

# A DF17 identification frame (ICAO 4840D6, callsign KLM1023) from "The 1090 MHz Riddle".
DF17 = "8D4840D6202CC371C32CE0576098"
UNIT = REPO / "systemd" / "adsb-agent.service"


class NotifySocket:
    """A unix datagram socket bound where $NOTIFY_SOCKET points, like systemd's."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def pump(self, seconds: float) -> list[dict[str, str]]:
        """Receive for `seconds`; returns what arrived in that time."""
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            msg = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), msg))
            got.append(msg)
        return got

    def wait_for(self, key: str, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.pump(0.1):
                if key in msg:
                    return msg
        raise AssertionError(f"no {key} within {timeout} s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


def _count(msgs: list[dict[str, str]], key: str) -> int:
    return sum(1 for m in msgs if m.get(key) == "1")


def test_notifier_is_a_no_op_without_notify_socket():
    n = Notifier({})
    assert not n.enabled
    assert n.ready() is False and n.watchdog() is False


def test_notifier_reads_the_watchdog_interval_for_this_process_only():
    assert Notifier({"WATCHDOG_USEC": "2000000"}).watchdog_s == 2.0
    assert Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_s
    assert Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}).watchdog_s is None


def test_monitor_pings_while_frames_flow_and_stops_when_the_pipeline_stalls(tmp_path):
    sock = NotifySocket(tmp_path / "notify")
    stop = threading.Event()
    pipeline = Pipeline(build_config({"site": {"name": "strip-01"}}), [])
    notifier = Notifier({"NOTIFY_SOCKET": str(sock.path), "WATCHDOG_USEC": "200000"})
    status_path = tmp_path / "run" / "status.json"
    monitor = ServiceMonitor(
        pipeline_probe(pipeline, []), stop, notifier, site="strip-01", status_path=status_path
    )
    assert monitor.interval == pytest.approx(0.1)  # half of WatchdogSec
    assert monitor.stall_s == pytest.approx(0.2)  # a whole WatchdogSec without progress
    monitor.start()
    try:
        assert sock.wait_for("READY", 2)["READY"] == "1"
        healthy: list[dict[str, str]] = []
        deadline = time.monotonic() + 0.8
        t = 1_767_225_600.0
        while time.monotonic() < deadline:  # frames keep arriving: healthy
            t += 0.05
            pipeline.handle(Frame(bytes.fromhex(DF17), t))
            healthy += sock.pump(0.05)
        assert _count(healthy, "WATCHDOG") >= 4
        sock.pump(0.4)  # frames stop; the stall window passes
        stalled = sock.pump(0.8)
        assert _count(stalled, "WATCHDOG") == 0, stalled
        assert any(m.get("STATUS", "").startswith("STALLED") for m in stalled)
        assert monitor.stalled
        doc = json.loads(status_path.read_text())
        assert doc["state"] == "red" and doc["components"]["pipeline"]["state"] == "red"
        pipeline.handle(Frame(bytes.fromhex(DF17), t + 1))  # progress again: pings resume
        assert "WATCHDOG" in sock.wait_for("WATCHDOG", 1)
    finally:
        monitor.close()
    sock.pump(0.2)
    assert any(m.get("STOPPING") == "1" for _, m in sock.messages)
    assert stop.is_set()
    assert json.loads(status_path.read_text())["summary"] == "stopped"
    sock.close()


class AvrServer:
    """An AVR text server (dump1090 port 30002) the test can pause."""

    def __init__(self) -> None:
        self.feeding = threading.Event()
        self.feeding.set()
        self.server = TcpServer(self._serve, name="avr-server").start()
        self.port = self.server.port

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while not self.server.stopping.is_set():
                if self.feeding.is_set():
                    try:
                        conn.sendall(f"*{DF17};\n".encode())
                    except OSError:
                        break
                time.sleep(0.05)

    def close(self) -> None:
        self.server.close()


def test_run_under_a_notify_socket_says_ready_pings_only_on_progress_and_stopping(tmp_path):
    """The real daemon (`adsb-agent run`) with systemd's environment for Type=notify."""
    sock = NotifySocket(tmp_path / "notify")
    server = AvrServer()
    status_file = tmp_path / "status.json"
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(sock.path),
        "WATCHDOG_USEC": "1000000",
        "PYTHONPATH": str(REPO),
    }
    env.pop("INVOCATION_ID", None)
    env.pop("JOURNAL_STREAM", None)
    argv = [sys.executable, "-m", "agent", "run", "--source", f"avr://127.0.0.1:{server.port}"]
    argv += ["--site", "strip-01", "--state-dir", str(tmp_path / "state")]
    argv += ["--status-file", str(status_file)]
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert sock.wait_for("READY", 20)["READY"] == "1"
        healthy = sock.pump(1.6)
        assert _count(healthy, "WATCHDOG") >= 2, healthy
        server.feeding.clear()  # the receiver goes silent but stays connected
        sock.pump(1.6)  # the 1 s stall window passes
        stalled = sock.pump(1.6)
        assert _count(stalled, "WATCHDOG") == 0, stalled
        assert any(m.get("STATUS", "").startswith("STALLED") for m in stalled)
        doc = json.loads(status_file.read_text())
        assert doc["state"] == "red" and doc["site"] == "strip-01"
        text, code = status_cmd.render(doc, status_file)
        assert code in (0, 1) and "strip-01" in text
        server.feeding.set()
        sock.wait_for("WATCHDOG", 3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.close()
    sock.pump(0.2)
    assert any(m.get("STOPPING") == "1" for _, m in sock.messages)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "no progress for" in err  # one line for the stall, not one per check
    assert err.count("no progress for") == 1
    text, code = status_cmd.render(status_cmd.load(status_file), status_file)
    assert "stopped" in text and code == 1
    sock.close()


def test_status_command_reports_missing_stale_and_healthy_files(tmp_path):
    path = tmp_path / "status.json"
    text, code = status_cmd.render(status_cmd.load(path), path)
    assert code == 3 and "not running" in text
    now = time.time()
    doc = {
        "site": "strip-01",
        "pid": 42,
        "updated": now - 1,
        "expires": now + 14,
        "state": "amber",
        "summary": "3.0 frames/s",
        "components": {
            "source avr://x": {"state": "green", "message": "3.0 frames/s"},
            "mqtt": {"state": "amber", "message": "not connected for 20 s"},
        },
    }
    path.write_text(json.dumps(doc))
    text, code = status_cmd.render(status_cmd.load(path), path, now=now)
    assert code == 0 and "[warn ] mqtt" in text.replace("  ", " ").replace("  ", " ")
    text, code = status_cmd.render(status_cmd.load(path), path, now=now + 60)
    assert code == 1 and "STALE" in text


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    """systemd-analyze, in a private /run when we are root (it writes to /run/systemd)."""
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze is missing (apt-get install systemd)")
    if os.geteuid() != 0:
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    if not sandbox.available():
        pytest.fail("running as root but cannot make a private /run for systemd-analyze")
    return sandbox.run([exe, *args])


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return _analyze("verify", "--man=no", str(unit))


def _unit_with_exec_in(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart's binary under tmp_path (verify wants it to exist;
    /opt must not be touched by tests). Nothing else changes."""
    exe = tmp_path / "opt/adsb-agent/venv/bin/adsb-agent"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    text = UNIT.read_text()
    assert text.count("ExecStart=/opt/adsb-agent/venv/bin/adsb-agent ") == 1
    unit = tmp_path / "adsb-agent.service"
    unit.write_text(text.replace("ExecStart=/opt/", f"ExecStart={tmp_path}/opt/"))
    return unit


def test_the_unit_verifies_without_a_single_warning(tmp_path):
    run = _verify(_unit_with_exec_in(tmp_path))
    assert run.returncode == 0 and run.stderr == "" and run.stdout == "", run.stderr


def test_systemd_analyze_catches_a_broken_unit(tmp_path):
    """The verify test can fail: a misspelt directive is reported."""
    unit = _unit_with_exec_in(tmp_path)
    unit.write_text(unit.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    assert "Unknown key" in _verify(unit).stderr


def test_the_unit_keeps_the_contract_and_is_hardened(tmp_path):
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "RestartPreventExitStatus=64",
        "SupplementaryGroups=plugdev dialout",
        "StateDirectory=adsb-agent",
        "ConfigurationDirectory=adsb-agent",
        "RuntimeDirectory=adsb-agent",
        "LoadCredential=mqtt-password:/etc/adsb-agent/mqtt-password",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "DevicePolicy=closed",
        "DeviceAllow=char-usb_device rw",
        "DeviceAllow=char-ttyUSB rw",
        "DeviceAllow=char-ttyACM rw",
        "SystemCallFilter=@system-service",
    ):
        assert f"\n{line}\n" in text, line
    assert "PrivateDevices" not in text.replace("PrivateDevices (hides", "")
    from agent.errors import EXIT_CONFIG

    assert EXIT_CONFIG == 64
    # systemd's own exposure score: below 3 ("OK") with the dongle still reachable.
    unit = _unit_with_exec_in(tmp_path)
    run = _analyze("security", "--offline=yes", "--threshold=30", str(unit))
    assert run.returncode == 0, run.stdout + run.stderr


def test_status_components_follow_a_real_source_and_a_real_broker_link(tmp_path, broker):
    """Per-component colours: a Beast recording read in steps, an MQTT link that drops."""
    from agent.config import MqttConfig
    from agent.outbox import Outbox
    from agent.outputs.mqtt import MqttPublisher
    from agent.sources import open_file_source
    from tests.conftest import shared_data

    src = open_file_source(str(shared_data("beast/traffic_sample_dump1090.bin")), "beast")
    frames = src.frames(threading.Event())
    pipeline = Pipeline(build_config({"site": {"name": "strip-01"}}), [])
    mqtt = MqttPublisher(MqttConfig(url=broker.url), "strip-01", Outbox(tmp_path / "o.sqlite"))
    pipeline.publishers.append(mqtt.start())
    assert mqtt.wait_connected(10)
    now = [1000.0]
    monitor = ServiceMonitor(
        pipeline_probe(pipeline, [src]),
        threading.Event(),
        Notifier({}),
        stall_s=150.0,
        clock=lambda: now[0],
    )
    try:
        for _ in range(200):
            pipeline.handle(next(frames))
        now[0] += 5
        doc = monitor.check()
        source = doc["components"][f"source {src.name}"]
        assert source["state"] == "green" and source["message"].endswith(" frames/s")
        assert float(source["message"].split()[0]) >= 40.0  # 200+ frames in 5 s
        assert doc["components"]["mqtt"] == {"state": "green", "message": "connected, outbox 0"}
        assert doc["components"]["pipeline"]["state"] == "green" and doc["state"] == "green"

        broker.stop()
        assert wait_until(lambda: not mqtt.connected.is_set())
        now[0] += 100  # no frames for 100 s: quiet, not yet stalled
        doc = monitor.check()
        assert doc["components"][f"source {src.name}"]["state"] == "amber"
        assert doc["components"]["mqtt"]["state"] == "amber"
        assert "not connected" in doc["components"]["mqtt"]["message"]
        now[0] += 400  # nothing at all past the stall window; the link down for long
        doc = monitor.check()
        assert doc["components"][f"source {src.name}"]["state"] == "red"
        assert doc["components"]["mqtt"]["state"] == "red"
        assert doc["state"] == "red" and doc["summary"].startswith("STALLED")
    finally:
        mqtt.close(timeout=0.2)
