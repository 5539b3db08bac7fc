"""The reader-to-pipeline hand-off: batches, bounds in frames and bytes, drops counted."""

from __future__ import annotations

import threading
import time
from collections import Counter

from agent.config import build_config
from agent.frame import Frame
from agent.handoff import FrameHandoff, frame_cost
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline, run_sources
from agent.sources.beast import BeastFileSource
from tests.conftest import shared_data

LONG = bytes.fromhex("8D4840D6202CC371C32CE0576098")
SHORT = bytes.fromhex("5D4840D6C2F7A6")


def _frames(n: int, msg: bytes = LONG) -> list[Frame]:
    return [Frame(msg, float(i), -20.0, "test") for i in range(n)]


def test_a_live_source_beyond_the_frame_bound_is_dropped_and_counted():
    counts: Counter[str] = Counter()
    handoff = FrameHandoff(counts, max_frames=10)
    stop = threading.Event()
    kept = [handoff.put(f, wait=False, stop=stop) for f in _frames(100)]
    assert kept.count(True) == 10
    assert counts["frames_dropped_queue_full"] == 90
    batch = handoff.take(timeout=0)
    assert [f.rx_time for f in batch] == [float(i) for i in range(10)]
    assert handoff.put(_frames(1)[0], wait=False, stop=stop)  # room again


def test_the_byte_bound_holds_too():
    counts: Counter[str] = Counter()
    handoff = FrameHandoff(counts, max_frames=1000, max_bytes=3 * frame_cost(_frames(1)[0]))
    stop = threading.Event()
    kept = [handoff.put(f, wait=False, stop=stop) for f in _frames(5)]
    assert kept == [True, True, True, False, False]
    # Short frames cost less: one more fits after a long one is gone.
    handoff.take(timeout=0)
    assert all(handoff.put(f, wait=False, stop=stop) for f in _frames(3, SHORT))
    assert counts["frames_dropped_queue_full"] == 2


def test_a_recording_waits_for_room_and_loses_nothing():
    counts: Counter[str] = Counter()
    handoff = FrameHandoff(counts, max_frames=16)
    stop = threading.Event()
    sent = _frames(2000)

    def produce() -> None:
        for f in sent:
            handoff.put(f, wait=True, stop=stop)
        handoff.end()

    producer = threading.Thread(target=produce)
    producer.start()
    got: list[Frame] = []
    largest = 0
    while True:
        ended = handoff.all_ended
        batch = handoff.take(timeout=5.0)
        largest = max(largest, len(batch))
        got += batch
        if ended:
            break
    producer.join()
    assert got == sent
    assert 1 < largest <= 16  # batches, never more than the bound
    assert "frames_dropped_queue_full" not in counts


def test_a_waiting_reader_gives_up_on_stop():
    counts: Counter[str] = Counter()
    handoff = FrameHandoff(counts, max_frames=1)
    stop = threading.Event()
    assert handoff.put(_frames(1)[0], wait=True, stop=stop)
    result: list[bool] = []
    t = threading.Thread(
        target=lambda: result.append(handoff.put(LONG_FRAME, wait=True, stop=stop))
    )
    t.start()
    stop.set()
    t.join(timeout=5.0)
    assert result == [False]
    assert counts["frames_dropped_queue_full"] == 1


LONG_FRAME = Frame(LONG, 1.0)


def test_take_returns_when_a_frame_arrives_not_at_its_timeout():
    handoff = FrameHandoff(Counter())
    stop = threading.Event()
    t = threading.Timer(0.05, lambda: handoff.put(LONG_FRAME, wait=False, stop=stop))
    t.start()
    t0 = time.monotonic()
    batch = handoff.take(timeout=30.0)
    assert batch == [LONG_FRAME]
    assert time.monotonic() - t0 < 10.0
    t.join()


def test_a_recording_with_a_live_clock_reaches_the_pipeline_whole():
    """`run` over a file: one source and a clock, read in the pipeline's own thread
    (a recording's time is its own) like `replay`, with the same frames and counts."""
    cfg = build_config({"filter": {"enabled": False}})
    path = str(shared_data("beast/traffic_sample_dump1090.bin"))
    inline = Pipeline(cfg, [StdoutPublisher(_Sink())])
    run_sources([BeastFileSource(path, start_time=1000.0)], inline, threading.Event())
    threaded = Pipeline(cfg, [StdoutPublisher(_Sink())])
    source = BeastFileSource(path, start_time=1000.0)
    assert source.recorded
    run_sources([source], threaded, threading.Event(), clock=time.time)
    assert threaded.counts["frames"] == inline.counts["frames"] == 239
    assert threaded.verifier.counts == inline.verifier.counts
    assert "frames_dropped_queue_full" not in threaded.counts


class _PacedRecording:
    """A recording read at a pace (so wall-clock ticks would fall inside it) whose frame
    times run 100 s ahead of the clock given to run_sources, as a file read by `run`."""

    recorded = True
    name = "paced"

    def __init__(self, path: str):
        self.inner = BeastFileSource(path, start_time=1100.0)
        self.frames_given = 0

    def frames(self, stop: threading.Event):
        start = time.monotonic()
        for i, frame in enumerate(self.inner.frames(stop)):
            if i == 120:  # the rest after the pipeline thread's 1 s tick interval
                stop.wait(max(0.0, 1.5 - (time.monotonic() - start)))
            self.frames_given += 1
            yield frame


def test_a_recording_run_with_a_wall_clock_expires_tracks_by_its_own_time():
    """The clock (1000.0) is 100 s behind the recording's frames: ticking tracks with it
    moved every track's age back as if the clock had stepped (`frame time went back`)."""
    cfg = build_config({"filter": {"enabled": False}})
    pipeline = Pipeline(cfg, [StdoutPublisher(_Sink())])
    source = _PacedRecording(str(shared_data("beast/traffic_sample_dump1090.bin")))
    calls = []
    run_sources([source], pipeline, threading.Event(), clock=lambda: calls.append(1) or 1000.0)
    assert source.frames_given == pipeline.counts["frames"] == 239
    assert pipeline.tracker.counts["clock_steps_back"] == 0
    assert calls == []  # a recording's time is its own


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
