"""The pipeline as a whole: several sources, records, counters."""

from __future__ import annotations

import heapq
import io
import itertools
import json
import threading
import time
from collections import Counter

import pytest

from agent.config import build_config
from agent.frame import Frame
from agent.outputs.base import Output
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline, run_sources
from agent.sources.beast import BeastFileSource
from tests.conftest import shared_data
from tests.helpers import validate


def _pipeline() -> tuple[Pipeline, io.StringIO]:
    out = io.StringIO()
    cfg = build_config({"filter": {"enabled": False}})
    return Pipeline(cfg, [StdoutPublisher(out)]), out


def _records(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _recording(name: str) -> list[Frame]:
    path = str(shared_data("beast/traffic_sample_dump1090.bin"))
    return list(BeastFileSource(path, name=name, start_time=1000.0).frames(threading.Event()))


def test_two_receivers_hearing_the_same_frames_count_them_once():
    """Two live feeds of the same sky arrive interleaved in time."""
    single, out1 = _pipeline()
    for f in _recording("dongle"):
        single.handle(f)
    double, out2 = _pipeline()
    merged = heapq.merge(_recording("dongle"), _recording("neighbour"), key=lambda f: f.rx_time)
    for f in merged:
        double.handle(f)
    assert double.counts["frames"] == 2 * 239
    assert sum(double.dedup.counts.values()) == 239
    assert double.verifier.counts == single.verifier.counts
    assert _records(out2) == _records(out1)
    for r in _records(out2):
        validate(r)


def test_one_configured_source_is_not_compared_with_itself():
    """A single receiver has no other to repeat its frames: the same records come out
    and nothing is remembered for a comparison that cannot happen."""
    path = str(shared_data("beast/traffic_sample_dump1090.bin"))
    out = io.StringIO()
    cfg = build_config({"filter": {"enabled": False}, "sources": [f"file:{path}?format=beast"]})
    one = Pipeline(cfg, [StdoutPublisher(out)])
    default, default_out = _pipeline()
    for f in _recording("dongle"):
        one.handle(f)
        default.handle(f)
    assert len(one.dedup) == 0 and len(default.dedup) > 0
    assert one.counts == default.counts
    assert _records(out) == _records(default_out) != []


def test_several_sources_run_in_reader_threads_until_all_end():
    pipeline, _ = _pipeline()
    path = str(shared_data("beast/traffic_sample_dump1090.bin"))
    sources = [BeastFileSource(path, name=n, start_time=1000.0 * i) for i, n in enumerate("ab")]
    run_sources(sources, pipeline, threading.Event())
    assert pipeline.counts["frames"] == 2 * 239  # far apart in time: no duplicates
    assert "frames_dropped_queue_full" not in pipeline.counts


class _LoneIqSource:
    """A source with batches (as the IQ sources have): the recording's frames in one
    batch, then empty batches (awake, nothing heard) until the pipeline has asked the
    clock, or until `fail` raises after the first batch."""

    name = "lone"
    recorded = False

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.counts: Counter[str] = Counter()
        self.threads: set[int] = set()
        self.clock_calls: list[float] = []

    def clock(self) -> float:
        self.clock_calls.append(5000.0)
        return 5000.0  # long after the recording's frames (1000 s on): every track is old

    def batches(self, stop: threading.Event):
        self.threads.add(threading.get_ident())
        yield _recording(self.name)
        if self.fail:
            raise OSError("device gone")
        deadline = time.monotonic() + 30.0
        while not self.clock_calls and time.monotonic() < deadline:
            self.threads.add(threading.get_ident())
            stop.wait(0.05)
            yield []
        stop.set()  # the daemon's stop: run_sources returns
        yield []

    def frames(self, stop: threading.Event):
        return itertools.chain.from_iterable(self.batches(stop))


def test_a_lone_iq_source_runs_in_the_pipeline_thread_and_ticks_while_nothing_is_heard():
    """One dongle: its demodulator runs in the pipeline's thread (no reader thread to
    contend with), and empty batches still let silent tracks end by the wall clock."""
    pipeline, out = _pipeline()
    source = _LoneIqSource()
    run_sources([source], pipeline, threading.Event(), clock=source.clock)
    assert source.threads == {threading.get_ident()}
    assert source.clock_calls  # ticked between batches with no frames
    assert pipeline.counts["frames"] == 239
    assert pipeline.tracker.aircraft == {}  # expired by the tick, not by finish()
    assert pipeline.tracker.counts["tracks_expired"] == 3
    events = [r.get("event") for r in _records(out)]
    assert events.count("track_end") == events.count("track_start") > 0


def test_a_lone_source_that_fails_is_counted_by_the_daemon_and_raised_to_a_command():
    pipeline, _ = _pipeline()
    run_sources([_LoneIqSource(fail=True)], pipeline, threading.Event(), clock=time.time)
    assert pipeline.counts["source_failures"] == 1
    assert pipeline.counts["frames"] == 239  # what came before the failure went through
    replay, _ = _pipeline()
    with pytest.raises(OSError, match="device gone"):
        run_sources([_LoneIqSource(fail=True)], replay, threading.Event())


def test_a_frame_that_breaks_a_stage_is_counted_and_the_feed_goes_on(caplog):
    pipeline, out = _pipeline()
    frames = _recording("dongle")
    pipeline.decoder.decode = _explode_once(pipeline.decoder.decode)  # a stage with a bug
    for f in frames:
        pipeline.handle(f)
    assert pipeline.counts["frame_errors"] == 1
    assert "failed in the pipeline" in caplog.text
    assert pipeline.counts["frames"] == 239
    assert any(r["type"] == "position" for r in _records(out))


def _explode_once(decode):
    state = {"done": False}

    def wrapped(frame):
        if not state["done"]:
            state["done"] = True
            raise TypeError("unsupported operand")
        return decode(frame)

    return wrapped


class _FrameTap(Output):
    """An output that keeps the frames it is shown, as a raw feed (Beast out) would."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.frames: list[Frame] = []

    def publish(self, record: dict) -> None:
        self.counts["published"] += 1

    def on_frame(self, frame: Frame) -> None:
        self.frames.append(frame)


def test_outputs_see_every_frame_the_crc_gate_accepts_and_no_other():
    tap = _FrameTap()
    pipeline = Pipeline(build_config({"filter": {"enabled": False}}), [tap])
    frames = _recording("dongle")
    broken = Frame(bytes.fromhex("8D4840D6202CC371C32CE0576099"), 2000.0)  # CRC off by one bit
    for f in [*frames, broken]:
        pipeline.handle(f)
    accepted = sum(v for k, v in pipeline.verifier.counts.items() if k.startswith("accepted_df"))
    assert 0 < accepted < len(frames)  # the recording has frames the gate refuses
    assert len(tap.frames) == accepted
    assert broken not in tap.frames
    assert (
        tap.counts["published"]
        == pipeline.counts["records_position"] + pipeline.counts["records_event"]
    )
    assert tap.link_state() is None  # no far end: the service monitor shows no link


def test_the_pipeline_keeps_selections_and_forgets_them_when_tracks_end():
    """Which tracks had a track_start is pipeline state, not tracker state: it lives
    until the track's track_end, which carries the tags it was last selected with."""
    pipeline, out = _pipeline()
    frames = _recording("dongle")
    for f in frames:
        pipeline.handle(f)
    started = {r["icao"] for r in _records(out) if r.get("event") == "track_start"}
    assert started and set(pipeline.selections) == started
    assert all(s.tags == ("filter_off",) for s in pipeline.selections.values())
    pipeline.tick(frames[-1].rx_time + pipeline.tracker.expire_s + 1.0)  # all silent
    assert pipeline.selections == {}
    ended = [r for r in _records(out) if r.get("event") == "track_end"]
    assert sorted(r["icao"] for r in ended) == sorted(started)
    assert all(r["tags"] == ["filter_off"] for r in ended)
    pipeline.finish()  # nothing left to end: no second track_end
    assert len([r for r in _records(out) if r.get("event") == "track_end"]) == len(ended)
