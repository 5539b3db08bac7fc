"""`adsb-agent tail`: a real agent publisher -> real mosquitto -> one line per message."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.cli import main
from agent.config import MqttConfig, SiteConfig
from agent.outbox import Outbox
from agent.outputs.mqtt import MqttPublisher
from agent.records import event_record, position_record
from agent.tail import describe, run_tail
from agent.track import Aircraft
from tests.conftest import REPO, Broker, free_port
from tests.helpers import located_aircraft


def _aircraft(i: int) -> Aircraft:
    return located_aircraft(
        i,
        messages=12,
        lat=-15.6123,
        lon=-56.1187,
        alt_baro_ft=1600,
        gs_kt=90.0,
        track_deg=270.0,
        callsign="PTABC",
    )


class Tail:
    """run_tail on a thread, writing into a buffer the test reads."""

    def __init__(self, cfg: MqttConfig, site: str | None):
        self.out = io.StringIO()
        self.stop = threading.Event()
        subscribed = threading.Event()
        self.thread = threading.Thread(
            target=run_tail,
            args=(cfg, site, self.stop),
            kwargs={"out": self.out, "on_subscribed": subscribed.set},
            daemon=True,
        )
        self.thread.start()
        assert subscribed.wait(10)

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()

    def wait_for(self, text: str, count: int = 1, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [line for line in self.lines() if text in line]
            if len(hits) >= count:
                return hits
            time.sleep(0.05)
        raise AssertionError(f"{count} x {text!r} not seen in:\n" + "\n".join(self.lines()))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def _agent(tmp: Path, url: str, site: str, **mqtt) -> MqttPublisher:
    return MqttPublisher(MqttConfig(url=url, **mqtt), site, Outbox(tmp / f"{site}.sqlite")).start()


def test_tail_prints_one_line_per_position_and_event_of_one_site(broker, tmp_path):
    tail = Tail(MqttConfig(url=broker.url), "site-01")
    ours = _agent(tmp_path, broker.url, "site-01")
    other = _agent(tmp_path, broker.url, "site-02")
    try:
        site = SiteConfig(name="site-01", lat=-15.6, lon=-56.1, elevation_ft=600)
        ac = _aircraft(1)
        ours.publish(event_record("track_start", ac, site, ac.last_seen, ("low", "light")))
        for i in range(1, 4):
            ours.publish(position_record(_aircraft(i), site, ("low", "light")))
        ac.squawk = "7700"
        ours.publish(event_record("emergency_squawk", ac, site, ac.last_seen + 5))
        other.publish(position_record(_aircraft(9), SiteConfig(name="site-02"), ("low",)))
        assert ours.flush(10) and other.flush(10)
        positions = tail.wait_for("PTABC", count=5)
        tail.wait_for("site-01  status: online")
        tail.wait_for("info: adsb-agent")
    finally:
        ours.close()
        other.close()
    tail.wait_for("site-01  status: stopped")
    tail.close()
    assert not any("site-02" in line for line in tail.lines())  # --site filters
    start = next(line for line in positions if "EVENT track_start" in line)
    assert "E40001" in start and "[low,light]" in start
    assert any("EMERGENCY emergency_squawk" in line and "squawk 7700" in line for line in positions)
    pos = [line for line in positions if "EVENT" not in line and "EMERGENCY" not in line]
    assert len(pos) == 3 and all(" 1600 ft" in line and "90 kt" in line for line in pos)
    assert "-15.61230  -56.11870" in pos[0] and "270°" in pos[0]


def test_tail_unpacks_batched_positions_and_shows_every_site(broker, tmp_path):
    tail = Tail(MqttConfig(url=broker.url), None)
    agent = _agent(tmp_path, broker.url, "site-03", batch_s=0.2)
    try:
        for i in range(1, 5):
            agent.publish(position_record(_aircraft(i), SiteConfig(name="site-03"), ("low",)))
        assert agent.flush(10)
        lines = tail.wait_for("site-03  E4", count=4)
    finally:
        agent.close()
        tail.close()
    assert sorted(line.split()[2] for line in lines) == ["E40001", "E40002", "E40003", "E40004"]


def test_health_and_junk_are_one_line_each():
    health = (
        b'{"ts": 1767225600, "rates": {"frames_per_s": 12.5, "positions_per_s": 0.4},'
        b' "aircraft": 3, "link": {"connected": true, "outbox_depth": 0}}'
    )
    (line,) = describe("adsb/v1/site-01/health", health)
    assert "site-01  health: 12.5 frames/s, 0.4 positions/s, 3 aircraft, link up" in line
    (line,) = describe("adsb/v1/site-01/events", b"\xff not json")
    assert "not JSON" in line


def test_tail_command_rejects_a_bad_url(capsys):
    assert main(["tail", "--mqtt", "http://broker"]) == 2
    assert "mqtt.url" in capsys.readouterr().out


def test_silence_from_an_acl_that_grants_but_never_serves_is_explained(tmp_path):
    """mosquitto acknowledges a subscription its ACL forbids, then sends nothing."""
    import subprocess

    from tests.conftest import Broker

    pw = tmp_path / "passwd"
    pw.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "site-01", "s1"], check=True)
    pw.chmod(0o600)
    acl = tmp_path / "acl"
    acl.write_text("pattern write adsb/v1/%u/#\n")  # the site may write, not read
    b = Broker(tmp_path, f"allow_anonymous false\npassword_file {pw}\nacl_file {acl}\n").start()
    url = f"mqtt://site-01:s1@127.0.0.1:{b.port}"
    agent = _agent(tmp_path, url, "site-01")  # leaves a retained status the tail cannot read
    assert agent.wait_connected(10)
    out = io.StringIO()
    stop = threading.Event()
    t = threading.Thread(
        target=run_tail,
        args=(MqttConfig(url=url), "site-01", stop),
        kwargs={"out": out, "quiet_hint_s": 0.5},
    )
    t.start()
    try:
        deadline = time.monotonic() + 10
        while "nothing in" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(5)
        agent.close(timeout=0.2)
        b.stop()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("-- subscribed to adsb/v1/site-01/#")
    assert len(lines) == 2 and "not even the retained status" in lines[1]
    assert "let site-01 read it" in lines[1]


def test_tail_and_the_publisher_agree_on_every_topic_under_any_prefix(broker, tmp_path):
    """Each kind the publisher sends is parsed back by the topics module and shown by
    `tail` as what it is, never as an unknown topic: both take the prefix from config."""
    from agent.outputs import topics
    from tests.mqtt_helpers import Subscriber

    prefix = "fleet/adsb/v9"
    raw = Subscriber(broker.port, topics.subscription(prefix, None))
    tail = Tail(MqttConfig(url=broker.url, topic_prefix=prefix), None)
    single = _agent(tmp_path, broker.url, "site-a", topic_prefix=prefix, health_interval_s=1)
    batched = _agent(tmp_path, broker.url, "site-b", topic_prefix=prefix, batch_s=0.2)
    try:
        site_a, site_b = SiteConfig(name="site-a"), SiteConfig(name="site-b")
        ac = _aircraft(1)
        single.publish(event_record("track_start", ac, site_a, ac.last_seen, ("low",)))
        single.publish(position_record(ac, site_a, ("low",)))
        batched.publish(position_record(_aircraft(2), site_b, ("low",)))
        assert single.flush(10) and batched.flush(10)
        tail.wait_for("site-a  health:")  # the first health goes 2 s after the start
        tail.wait_for("info: adsb-agent", count=2)
        tail.wait_for("site-a  E40001")
        tail.wait_for("site-b  E40002")
        tail.wait_for("EVENT track_start")
    finally:
        single.close()
        batched.close()
    tail.wait_for("status: stopped", count=2)
    tail.close()
    assert raw.wait_for(lambda s: len(s.payloads(f"{prefix}/site-b/status")) >= 2)
    raw.close()
    parsed = [(topics.parse(t, prefix), t) for t, _, _ in raw.messages]
    assert all(p is not None for p, _ in parsed), [t for p, t in parsed if p is None]
    kinds = {(p.site, p.kind) for p, _ in parsed if p is not None}
    assert kinds >= {
        ("site-a", topics.STATUS),
        ("site-a", topics.INFO),
        ("site-a", topics.HEALTH),
        ("site-a", topics.EVENTS),
        ("site-a", topics.POSITION),
        ("site-b", topics.STATUS),
        ("site-b", topics.INFO),
        ("site-b", topics.POSITIONS),
    }
    shown = [line for line in tail.lines() if not line.startswith("--")]
    assert not [line for line in shown if prefix in line]  # no "unknown topic" lines
    for site in ("site-a", "site-b"):
        assert any(f"{site}  status: online" in line for line in shown)


def test_control_characters_from_a_site_are_shown_escaped_never_sent_raw(broker):
    """Any site that can publish reaches the operator's terminal: an ESC sequence (here
    one that would retitle the window) and C1 controls must arrive as visible text."""
    import paho.mqtt.publish as publish

    tail = Tail(MqttConfig(url=broker.url), None)
    event = {
        "ts": 1767225600,
        "site": "s",
        "icao": "E40001",
        "callsign": "\x1b]0;pwned\x07",
        "event": "track_start\x9b2J",
    }
    try:
        publish.multiple(
            [
                ("adsb/v1/site-01/events", json.dumps(event)),
                ("adsb/v1/site-01/status", b"online\x1b[2J\r\n"),
            ],
            hostname="127.0.0.1",
            port=broker.port,
        )
        tail.wait_for("EVENT track_start")
        tail.wait_for("status: online")
    finally:
        tail.close()
    text = tail.out.getvalue()
    assert not any(ch in text for ch in "\x1b\x07\x9b\r"), repr(text)
    assert "\\x1b]0;pwned\\x07" in text and "track_start\\x9b2J" in text
    assert "online\\x1b[2J\\x0d\\x0a" in text
    # mosquitto refuses control characters in topics; tail escapes them all the same.
    (line,) = describe("adsb/v1/x\x1bq/\x85odd", b'"red"\r\n')
    assert line.endswith('adsb/v1/x\\x1bq/\\x85odd: "red"\\x0d\\x0a')


def _tail_process(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "tail", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
    )


def test_a_wildcard_or_illegal_site_is_refused_at_once():
    for site in ("#", "+", "a/b", "", "x\x1b"):
        run = subprocess.run(
            [sys.executable, "-m", "agent", "tail", "--mqtt", "mqtt://127.0.0.1:1", "--site", site],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=30,  # it used to subscribe to adsb/v1/#/# and hang
        )
        assert run.returncode == 2, (site, run.stdout, run.stderr)
        assert "is not a site name" in run.stdout and "\x1b" not in run.stdout


def _reasons(cfg: MqttConfig, wanted: str, attempts: Callable[[], int] | None = None) -> list[str]:
    """run_tail's lines until `wanted` shows (and, given `attempts`, until the broker saw
    a second attempt, so a repeated line would have shown too)."""
    out = io.StringIO()
    stop = threading.Event()
    t = threading.Thread(target=run_tail, args=(cfg, None, stop), kwargs={"out": out})
    t.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if wanted in out.getvalue() and (attempts is None or attempts() >= 2):
                break
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(10)
    return out.getvalue().splitlines()


def test_tail_says_why_it_cannot_connect_once_per_reason(broker):
    refused = _reasons(MqttConfig(url=f"mqtt://127.0.0.1:{free_port()}"), "connection refused")
    assert refused[0].startswith("-- cannot connect to 127.0.0.1:")
    assert "connection refused (nothing listens on port" in refused[0]
    unknown = _reasons(MqttConfig(url="mqtt://no-such-host.invalid:1883"), "unknown host")
    assert "unknown host 'no-such-host.invalid'" in unknown[0]

    def attempts() -> int:
        return broker.log.read_text(errors="replace").count("New connection from")

    tls = _reasons(MqttConfig(url=f"mqtts://127.0.0.1:{broker.port}"), "TLS", attempts)
    assert attempts() >= 2
    assert len(tls) == 1 and "TLS handshake failed" in tls[0], tls
    assert f"is {broker.port} a TLS port?" in tls[0]


def _password_broker(d: Path) -> Broker:
    pw = d / "passwd"
    pw.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "site-01", "s3cret"], check=True)
    pw.chmod(0o600)
    return Broker(d, f"allow_anonymous false\npassword_file {pw}\n").start()


def _wait_subscribed(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(10)
    return line


def test_the_password_comes_from_a_file_or_the_environment_not_the_url(tmp_path):
    """A password in --mqtt shows in `ps`: a file or an environment variable does not."""
    b = _password_broker(tmp_path)
    url = f"mqtt://site-01@127.0.0.1:{b.port}"
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    try:
        by_file = _wait_subscribed(
            _tail_process("--mqtt", url, "--site", "site-01", "--mqtt-password-file", str(secret))
        )
        by_env = _wait_subscribed(
            _tail_process("--mqtt", url, "--site", "site-01", ADSB_AGENT_MQTT_PASSWORD="s3cret")
        )
        wrong = _wait_subscribed(
            _tail_process("--mqtt", url, "--site", "site-01", ADSB_AGENT_MQTT_PASSWORD="nope")
        )
    finally:
        b.stop()
    assert by_file.startswith("-- subscribed to adsb/v1/site-01/#"), by_file
    assert by_env.startswith("-- subscribed to adsb/v1/site-01/#"), by_env
    assert "refused" in wrong and "s3cret" not in wrong


def test_at_a_terminal_tail_asks_for_the_password(tmp_path):
    import pty

    b = _password_broker(tmp_path)
    url = f"mqtt://site-01@127.0.0.1:{b.port}"
    main_fd, sub_fd = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "tail", "--site", "site-01", "--mqtt", url],
        stdin=sub_fd,
        stdout=sub_fd,
        stderr=sub_fd,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )
    os.close(sub_fd)
    seen = b""
    try:
        seen = _read_until(main_fd, b"Password", seen)
        assert b"MQTT password for site-01 at 127.0.0.1:" in seen
        os.write(main_fd, b"s3cret\n")
        seen = _read_until(main_fd, b"-- subscribed", seen)
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(main_fd)
        b.stop()
    assert b"s3cret" not in seen  # not echoed
    assert b"-- subscribed to adsb/v1/site-01/#" in seen


def _read_until(fd: int, text: bytes, seen: bytes, timeout: float = 20.0) -> bytes:
    import select

    deadline = time.monotonic() + timeout
    while text.lower() not in seen.lower():
        left = deadline - time.monotonic()
        assert left > 0, seen
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            seen += os.read(fd, 4096)
    return seen
