"""The track table under hostile input: endless distinct addresses, a clock stepped back."""

from __future__ import annotations

import io
import json
import logging

from agent.config import build_config
from agent.crc import crc24
from agent.frame import Frame
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline
from agent.track import Tracker
from tests.helpers import LogLines

# Real airborne positions, even and odd, 0.5 s apart (OpenSky, aircraft 484506); only
# the address and parity are changed below. An aircraft has a position and is selected
# (track_start) once a second frame confirms the first fix.
_POSITIONS = [
    bytes.fromhex(m)
    for m in (
        "8d484506680732e232f2abda0ee9",
        "8d4845066807464d6eebed243de2",
        "8d4845066807464d7aebedce28f6",
        "8d484506680752e260f2acca204d",
    )
]


def _frame(address: int, t: float, template: bytes = _POSITIONS[0]) -> Frame:
    body = template[:1] + address.to_bytes(3, "big") + template[4:11]
    return Frame(body + crc24(body).to_bytes(3, "big"), t)


def _heard(pipeline: Pipeline, address: int, t: float) -> None:
    for k, template in enumerate(_POSITIONS):
        pipeline.handle(_frame(address, t + k * 0.01, template))


def _pipeline(**track: float) -> tuple[Pipeline, io.StringIO]:
    out = io.StringIO()
    cfg = build_config({"filter": {"enabled": False}, "track": track})
    return Pipeline(cfg, [StdoutPublisher(out)]), out


def _events(out: io.StringIO, kind: str) -> list[dict]:
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    return [r for r in records if r.get("event") == kind]


def test_the_track_table_is_bounded_and_the_least_recently_heard_end_first() -> None:
    pipeline, out = _pipeline(max_aircraft=100)
    for i in range(1000):
        _heard(pipeline, 0x400000 + i, i * 0.01)
        assert len(pipeline.tracker.aircraft) <= 100
    pipeline.tick(12.0)
    assert pipeline.tracker.counts["tracks_evicted"] == 900
    assert pipeline.tracker.counts["tracks_expired"] == 0
    ended = [r["icao"] for r in _events(out, "track_end")]
    assert ended == [f"{0x400000 + i:06X}" for i in range(900)]
    assert set(pipeline.tracker.aircraft) == {f"{0x400000 + i:06X}" for i in range(900, 1000)}


def test_an_aircraft_evicted_and_heard_again_before_it_is_ended_goes_on() -> None:
    tracker = Tracker(max_aircraft=2)
    for i, address in enumerate(("AAAAAA", "BBBBBB", "CCCCCC", "AAAAAA")):
        tracker.update({"icao": address}, float(i), None)
    # AAAAAA was evicted by CCCCCC, then heard again: BBBBBB made room for it.
    assert [ac.icao for ac in tracker.expire(3.0)] == ["BBBBBB"]
    assert tracker.aircraft["AAAAAA"].messages == 2
    assert tracker.counts["tracks_started"] == 3 and tracker.counts["tracks_evicted"] == 1


def test_a_clock_stepped_back_does_not_freeze_expiry() -> None:
    # 200 aircraft heard, then the wall clock (and frame time) steps back an hour and
    # only one aircraft is heard: the others end a minute later, not an hour.
    pipeline, out = _pipeline()
    t0 = 100_000.0
    for i in range(200):
        _heard(pipeline, 0x500000 + i, t0 + i * 0.01)
    assert len(_events(out, "track_start")) == 200
    said = LogLines()
    track_log = logging.getLogger("agent.track")
    track_log.addHandler(said)
    try:
        for s in range(0, 70):
            pipeline.handle(_frame(0x500000, t0 - 3600.0 + s))
    finally:
        track_log.removeHandler(said)
    ended = _events(out, "track_end")
    assert len(ended) == 199
    # Ended at their last_seen moved into the new time base: just before the step.
    assert all(t0 - 3600.0 - 3.0 < r["ts"] <= t0 - 3600.0 for r in ended)
    assert set(pipeline.tracker.aircraft) == {"500000"}
    assert pipeline.tracker.counts["clock_steps_back"] == 1
    steps = [line for line in said.lines if "frame time went back" in line]
    assert len(steps) == 1 and "went back 360" in steps[0]


def test_small_disorder_between_sources_is_not_a_clock_step() -> None:
    tracker = Tracker()
    tracker.update({"icao": "AAAAAA"}, 100.0, None)
    tracker.update({"icao": "BBBBBB"}, 95.0, None)  # a feed 5 s behind
    assert tracker.aircraft["AAAAAA"].last_seen == 100.0
    assert tracker.counts["clock_steps_back"] == 0
