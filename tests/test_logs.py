"""Logging: journal fields from the real systemd-python handler, priorities, plain
stderr lines off systemd, and repeated errors rate-limited."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterator

import pytest

from agent import logs
from tests import sandbox
from tests.conftest import REPO


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Leave the root logger as the test found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    logs.set_site(None)


def _need(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def test_journal_fields_captured_from_the_real_handler():
    """systemd-python's JournalHandler -> libsystemd -> a datagram on the journal socket,
    received by a test-owned socket in a private /run (tests/journal_capture.py)."""
    try:
        import systemd.journal  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        _need(False, "systemd-python is not installed (pip install '.[journal]')")
    _need(sandbox.available(), "needs root and unshare for a private /run")
    run = sandbox.run([sys.executable, "-m", "tests.journal_capture"], cwd=REPO)
    assert run.returncode == 0, run.stderr
    entries = json.loads(run.stdout)
    by_msg = {e["MESSAGE"]: e for e in entries}
    assert by_msg["handler JournalHandler"]["SYSLOG_IDENTIFIER"] == "adsb-agent"

    start = next(e for e in entries if e["MESSAGE"].startswith("track_start 40621D"))
    assert start["ADSB_EVENT"] == "track_start"  # logged by the real Pipeline
    assert start["ADSB_ICAO"] == "40621D"
    assert start["ADSB_SITE"] == "strip-01"
    assert start["PRIORITY"] == "6"
    assert start["LOGGER"] == "agent.pipeline"

    emergency = by_msg["emergency squawk 7700"]
    assert emergency["PRIORITY"] == "4"
    assert emergency["ADSB_ICAO"] == "E4A1B2" and emergency["ADSB_EVENT"] == "emergency_squawk"

    refused = [e for e in entries if e["MESSAGE"].startswith("MQTT broker refused")]
    assert len(refused) == 1  # five identical errors: one line now, a count later
    assert refused[0]["PRIORITY"] == "3"
    assert not any("per-frame detail" in e["MESSAGE"] for e in entries)


def test_off_systemd_lines_are_plain_and_timestamped(root_logging):
    out = io.StringIO()
    handler = logs.setup_logging(environ={}, stream=out)
    assert isinstance(handler, logging.StreamHandler)
    logs.set_site("strip-01")
    logging.getLogger("agent.mqtt").warning("MQTT link to %s lost", "broker:8883")
    line = out.getvalue().strip()
    assert line.endswith("WARNING agent.mqtt: MQTT link to broker:8883 lost")
    assert line[2] == ":" and line[5] == ":"  # HH:MM:SS first


def test_journal_stream_without_systemd_python_gets_priority_prefixes(root_logging, tmp_path):
    """systemd says stderr is the journal (JOURNAL_STREAM=dev:inode): `<N>` prefixes."""
    path = tmp_path / "stderr"
    with path.open("w") as stream:
        st = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert logs.under_systemd(env, stream)
        logs.setup_logging(environ=env, stream=stream, native=False)
        log = logging.getLogger("agent.pipeline")
        log.info("track_start E4A1B2", extra=logs.fields(icao="E4A1B2", event="track_start"))
        log.error("source failed\nsecond line")
    lines = path.read_text().splitlines()
    assert lines[0] == "<6>agent.pipeline: track_start E4A1B2 [event=track_start icao=E4A1B2]"
    assert lines[1:] == ["<3>agent.pipeline: source failed", "<3>second line"]


def test_a_journal_stream_that_is_not_ours_is_not_trusted(tmp_path):
    with (tmp_path / "a").open("w") as stream:
        assert not logs.under_systemd({"JOURNAL_STREAM": "1:2"}, stream)
        assert logs.under_systemd({"INVOCATION_ID": "abc"}, stream)


def test_identical_errors_are_let_through_once_a_minute_with_a_count(root_logging):
    now = [1000.0]
    filt = logs.RepeatFilter(60.0, clock=lambda: now[0])
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(filt)
    log = logging.getLogger("agent.test.repeat")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        for _ in range(5):
            log.error("cannot connect to %s", "broker")
        log.error("a different error")
        log.info("cannot connect to broker")  # INFO is never limited
        log.info("cannot connect to broker")
        now[0] += 61
        log.error("cannot connect to %s", "broker")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    assert out.getvalue().splitlines() == [
        "cannot connect to broker",
        "a different error",
        "cannot connect to broker",
        "cannot connect to broker",
        "cannot connect to broker (4 more in the last 60 s)",
    ]
    assert filt.suppressed == 4


def test_priorities_match_syslog():
    assert [logs.priority(lv) for lv in (10, 20, 30, 40, 50)] == [7, 6, 4, 3, 2]


def test_cli_installs_the_handler(root_logging):
    """`adsb-agent` logs through agent.logs (one handler, replaced on a second setup)."""
    from agent.cli import _setup_logging

    _setup_logging(False)
    _setup_logging(True)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_adsb_agent_handler", False)]
    assert len(ours) == 1 and logging.getLogger().level == logging.DEBUG
