"""DF11 repeats skip pyModeS and change nothing else."""

from __future__ import annotations

import io
import threading

from agent.config import build_config
from agent.frame import Frame
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline
from agent.repeats import RepeatedReplies
from agent.sources.iq import IqFileSource
from agent.verify import FrameVerifier
from tests.conftest import shared_data

DF11 = bytes.fromhex("5D4840D6C2F7A6")
DF17 = bytes.fromhex("8D4840D6202CC371C32CE0576098")


def test_a_df11_repeat_within_the_window_gets_the_first_copys_fields():
    repeats = RepeatedReplies(window_s=1.0)
    first = Frame(DF11, 100.0)
    assert repeats.fields(first) is None
    fields = {"df": 11, "icao": "4840D6"}
    repeats.remember(first, fields)
    got = repeats.fields(Frame(DF11, 100.9))
    assert got == fields and got is not fields  # a private copy
    assert repeats.fields(Frame(DF11, 101.5)) is None  # too late: decoded again
    assert repeats.fields(Frame(DF11, 99.0)) is None  # out of order: decoded again


def test_other_formats_are_always_decoded():
    repeats = RepeatedReplies()
    repeats.remember(Frame(DF17, 100.0), {"df": 17})
    assert repeats.fields(Frame(DF17, 100.1)) is None


def _pipeline_over(frames: list[Frame], window_s: float) -> tuple[Pipeline, dict, str]:
    """The pipeline, its aircraft before the end, and its records."""
    out = io.StringIO()
    cfg = build_config({"site": {"lat": 52.0, "lon": 4.5}, "filter": {"enabled": False}})
    pipeline = Pipeline(cfg, [StdoutPublisher(out)])
    pipeline.repeats = RepeatedReplies(window_s)
    for f in frames:
        pipeline.handle(f)
    aircraft = {a: _fields_of(ac) for a, ac in pipeline.tracker.aircraft.items()}
    pipeline.finish()
    return pipeline, aircraft, out.getvalue()


def test_a_busy_capture_gives_the_same_records_and_counters_with_fewer_pymodes_calls():
    path = str(shared_data("iq/modes1_2400.uc8"))
    source = IqFileSource(path, verifier=FrameVerifier(), start_time=1000.0)
    frames = [f for f in source.frames(threading.Event()) if f.accepted]
    frames += [  # the capture again a second later: repeats outside the window too
        Frame(f.msg, f.rx_time + 1.5, f.signal_dbfs, f.source, accepted=True) for f in frames
    ]
    skipping, aircraft, records = _pipeline_over(frames, 1.0)
    decoding, aircraft_ref, records_ref = _pipeline_over(frames, -1.0)  # never in the window
    assert aircraft == aircraft_ref and aircraft
    assert records == records_ref and records
    assert skipping.stats() == decoding.stats()
    saved = decoding.decoder._pipe.stats["total"] - skipping.decoder._pipe.stats["total"]
    assert saved > 100  # of 212 DF11 frames


def _fields_of(ac: object) -> dict:
    return {k: getattr(ac, k) for k in ac.__slots__}  # type: ignore[attr-defined]
