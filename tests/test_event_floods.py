"""Floods of events stay readable: a transponder toggling 7700/1200 is one emergency, and
the journal gets a bounded number of event lines, with a count of those left out."""

from __future__ import annotations

import io
import json
import logging

from agent.config import build_config
from agent.frame import Frame
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import EVENT_LOG_BURST, Pipeline
from agent.sim import encode

ICAO = 0xE48C01


def _pipeline() -> tuple[Pipeline, io.StringIO]:
    out = io.StringIO()
    cfg = build_config({"site": {"name": "strip-01", "lat": -15.6, "lon": -56.1}})
    return Pipeline(cfg, [StdoutPublisher(out)]), out


def _events(out: io.StringIO, kind: str) -> list[dict]:
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    return [r for r in records if r.get("event") == kind]


def test_a_transponder_toggling_7700_and_1200_is_one_emergency(caplog):
    pipeline, out = _pipeline()
    t = 1_800_000_000.0
    pipeline.handle(Frame(encode.all_call_reply(ICAO), t))  # makes the address known
    caplog.set_level(logging.INFO, logger="agent.pipeline")
    for i in range(500):  # 50 toggles a second for 10 s
        squawk = "7700" if i % 2 == 0 else "1200"
        pipeline.handle(Frame(encode.identity_reply(ICAO, squawk), t + 0.02 * (i + 1)))
    assert len(_events(out, "emergency_squawk")) == 1
    assert pipeline.counts["emergency_repeats_not_reported"] == 249
    assert len([r for r in caplog.records if "emergency_squawk" in r.getMessage()]) == 1
    # Another code is news at once (hijack after radio failure, say).
    pipeline.handle(Frame(encode.identity_reply(ICAO, "7500"), t + 11.0))
    assert [e["squawk"] for e in _events(out, "emergency_squawk")] == ["7700", "7500"]


def test_a_burst_of_events_logs_a_bounded_number_of_lines_with_a_count(caplog):
    pipeline, out = _pipeline()
    caplog.set_level(logging.INFO, logger="agent.pipeline")
    t = 1_800_000_000.0
    # 300 different aircraft declaring an emergency within a second: 300 records.
    for n in range(300):
        icao = 0xE40000 + n
        pipeline.handle(Frame(encode.all_call_reply(icao), t + n * 0.003))
        pipeline.handle(Frame(encode.identity_reply(icao, "7700"), t + n * 0.003 + 0.001))
    assert len(_events(out, "emergency_squawk")) == 300
    lines = [r for r in caplog.records if "emergency_squawk" in r.getMessage()]
    assert len(lines) == EVENT_LOG_BURST
    assert pipeline.counts["event_lines_not_logged"] == 300 - EVENT_LOG_BURST
    # Later, a line is allowed again and says how many were left out.
    icao = 0xE4F000
    pipeline.handle(Frame(encode.all_call_reply(icao), t + 60.0))
    pipeline.handle(Frame(encode.identity_reply(icao, "7700"), t + 60.001))
    last = [r for r in caplog.records if "emergency_squawk" in r.getMessage()][-1]
    assert f"({300 - EVENT_LOG_BURST} event lines left out before this one)" in last.getMessage()
