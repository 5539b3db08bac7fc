"""Decoder: pyModeS behind a CRC gate, with receiver-referenced first positions."""

from __future__ import annotations

from pyModeS import PipeDecoder

from agent.decode import Decoder
from agent.frame import Frame
from agent.geo import haversine_km
from tests.conftest import shared_data
from tests.helpers import opensky_frames

# OpenSky recording of 484506 near Amsterdam; its positions resolve near 52.3 N 4.7 E.
AMSTERDAM = (52.30, 4.76)


def _frames() -> list[Frame]:
    return opensky_frames(
        shared_data("opensky/484506_position.tsv"), shared_data("opensky/484506_velocity.tsv")
    )


def _positions(decoder: Decoder, frames: list[Frame]) -> list[tuple[float, float, float, str]]:
    out = []
    for frame in frames:
        fields = decoder.decode(frame)
        if fields and fields.get("latitude") is not None:
            out.append(
                (frame.rx_time, fields["latitude"], fields["longitude"], fields["position_source"])
            )
    return out


def _pymodes_positions(frames: list[Frame]) -> dict[float, tuple[float, float]]:
    """pyModeS's own PipeDecoder, untouched: the reference."""
    pipe = PipeDecoder()
    out = {}
    for f in frames:
        r = pipe.decode(f.hex, timestamp=f.rx_time)
        if r.get("latitude") is not None:
            out[f.rx_time] = (r["latitude"], r["longitude"])
    return out


def test_first_fix_comes_sooner_than_pymodes_bootstrap_and_agrees_with_it():
    frames = _frames()
    t0 = frames[0].rx_time
    reference = _pymodes_positions(frames)
    first_reference = min(reference) - t0
    with_receiver = _positions(Decoder(AMSTERDAM), frames)
    pairs_only = _positions(Decoder(None), frames)
    assert with_receiver[0][3] == "cpr_local" and pairs_only[0][3] == "cpr_global"
    assert with_receiver[0][0] - t0 < 1.0
    assert pairs_only[0][0] - t0 < first_reference
    assert first_reference > 2.0  # pyModeS waits for three consistent pairs
    # Wherever pyModeS also gives a position, ours is the same point.
    for decoded in (with_receiver, pairs_only):
        both = [(lat, lon, reference[t]) for t, lat, lon, _ in decoded if t in reference]
        assert len(both) > 1000
        assert max(haversine_km(lat, lon, *ref) for lat, lon, ref in both) < 0.05


def test_far_receiver_reference_never_yields_an_aliased_position():
    """A reference ~370 km away (beyond 180 NM) must not produce wrong positions."""
    frames = _frames()
    truth = _positions(Decoder(None), frames)
    far = _positions(Decoder((49.0, 4.8)), frames)
    assert far, "global positions still arrive"
    by_time = {t: (lat, lon) for t, lat, lon, _ in truth}
    for t, lat, lon, _src in far:
        if t in by_time:
            assert haversine_km(lat, lon, *by_time[t]) < 1.0
        else:  # a local fix that pyModeS did not give: must be near the track
            assert haversine_km(lat, lon, truth[0][1], truth[0][2]) < 100.0


def test_results_are_private_copies():
    frames = _frames()[:200]
    decoder = Decoder(None)
    kept = [decoder.decode(f) for f in frames]
    snapshot = [dict(k) for k in kept if k]
    for f in _frames()[200:400]:
        decoder.decode(f)
    assert [dict(k) for k in kept if k] == snapshot


def test_malformed_frame_is_counted_not_raised():
    decoder = Decoder(None)
    assert decoder.decode(Frame(bytes.fromhex("8D4840D6202CC371C32CE0"), 0.0)) is None
    assert decoder.counts["decode_error"] == 1
