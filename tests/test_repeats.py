"""Repeated replies skip pyModeS and change nothing else."""

from __future__ import annotations

import io
import threading
from collections import Counter

from agent.config import build_config
from agent.frame import Frame
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline
from agent.repeats import RepeatedReplies
from agent.sources.iq import IqFileSource
from agent.verify import FrameVerifier
from tests.conftest import shared_data

DF11 = bytes.fromhex("5D4840D6C2F7A6")
DF17 = bytes.fromhex("8D4840D6202CC371C32CE0576098")  # identification (TC 4)
POSITION = bytes.fromhex("8D40621D58C382D690C8AC2863A7")  # airborne position (TC 11)
VELOCITY = bytes.fromhex("8D485020994409940838175B284F")  # airborne velocity (TC 19)
VELOCITY_2 = bytes.fromhex("8DA05F219B06B6AF189400CBC33F")  # another, other address
COMM_B = bytes.fromhex("A8001EBCFFFB23286004A73F6A5B")  # DF21
ALTITUDE = bytes.fromhex("20001838CA3804")  # DF4


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


def test_positions_comm_b_and_altitude_replies_are_always_decoded():
    repeats = RepeatedReplies()
    for msg in (POSITION, COMM_B, ALTITUDE):
        repeats.remember(Frame(msg, 100.0), {"df": msg[0] >> 3})
        assert repeats.fields(Frame(msg, 100.1)) is None


def test_an_identification_repeat_gets_the_first_copys_fields():
    repeats = RepeatedReplies(window_s=1.0)
    fields = {"df": 17, "icao": "4840D6", "typecode": 4, "callsign": "KLM1023_"}
    repeats.remember(Frame(DF17, 100.0), fields)
    assert repeats.fields(Frame(DF17, 100.5)) == fields
    assert repeats.fields(Frame(DF17, 101.2)) is None


def _velocity_fields(icao: str = "485020") -> dict:
    return {"df": 17, "icao": icao, "typecode": 19, "groundspeed": 159, "track": 182.9}


def test_a_velocity_repeats_only_the_last_velocity_of_its_address():
    repeats = RepeatedReplies(window_s=1.0)
    repeats.remember(Frame(VELOCITY, 100.0), _velocity_fields())
    repeats.remember(Frame(VELOCITY_2, 100.1), _velocity_fields("A05F21"))  # other address
    assert repeats.fields(Frame(VELOCITY, 100.2)) == _velocity_fields()
    other = bytearray(VELOCITY)
    other[5] ^= 1  # another speed from the same address: the anchor moved
    repeats.remember(Frame(bytes(other), 100.3), _velocity_fields())
    assert repeats.fields(Frame(VELOCITY, 100.4)) is None


def test_a_rejected_velocity_is_decoded_again():
    repeats = RepeatedReplies(window_s=1.0)
    repeats.remember(Frame(VELOCITY, 100.0), _velocity_fields())
    rejected = {**_velocity_fields(), "groundspeed": None, "velocity_mismatch": True}
    repeats.remember(Frame(VELOCITY, 100.2), rejected)
    assert repeats.fields(Frame(VELOCITY, 100.3)) is None


def test_a_comm_b_speed_of_the_aircraft_ends_its_velocity_repeats():
    repeats = RepeatedReplies(window_s=1.0)
    repeats.remember(Frame(VELOCITY, 100.0), _velocity_fields())
    repeats.remember(Frame(COMM_B, 100.1), {"df": 21, "icao": "A05F21", "groundspeed": 300})
    assert repeats.fields(Frame(VELOCITY, 100.2)) is not None  # another aircraft's
    repeats.remember(Frame(COMM_B, 100.3), {"df": 21, "icao": "485020", "altitude": 9000})
    assert repeats.fields(Frame(VELOCITY, 100.4)) is not None  # no speed in it
    repeats.remember(Frame(COMM_B, 100.5), {"df": 21, "icao": "485020", "true_track": 180.0})
    assert repeats.fields(Frame(VELOCITY, 100.6)) is None


def _pipeline_over(frames: list[Frame], window_s: float) -> tuple[Pipeline, dict, str]:
    """The pipeline, its aircraft before the end, and its records."""
    out = io.StringIO()
    cfg = build_config({"site": {"lat": 52.0, "lon": 4.5}, "filter": {"enabled": False}})
    pipeline = Pipeline(cfg, [StdoutPublisher(out)])
    pipeline.repeats = RepeatedReplies(window_s)
    decode = pipeline.decoder.decode
    pipeline.decoded_kinds = Counter()  # type: ignore[attr-defined]

    def counted(frame: Frame) -> dict | None:
        kind = frame.msg[0] >> 3, frame.msg[4] >> 3 if frame.msg[0] >> 3 == 17 else None
        pipeline.decoded_kinds[kind] += 1  # type: ignore[attr-defined]
        return decode(frame)

    pipeline.decoder.decode = counted  # type: ignore[method-assign]
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
    assert saved > 250
    skipped = decoding.decoded_kinds - skipping.decoded_kinds  # type: ignore[attr-defined]
    assert skipped[11, None] > 100  # of 212 DF11
    assert skipped[5, None] > 10  # of 20 DF5
    assert skipped[17, 4] > 10  # of 22 identifications
    assert skipped[17, 19] > 50  # of 192 velocities
    assert not skipped[17, 11] and not skipped[21, None]  # positions, Comm-B


def _fields_of(ac: object) -> dict:
    return {k: getattr(ac, k) for k in ac.__slots__}  # type: ignore[attr-defined]
