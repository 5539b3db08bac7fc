"""Decoder: pyModeS behind a CRC gate, with receiver-referenced first positions."""

from __future__ import annotations

from agent.decode import Decoder, haversine_km
from agent.frame import Frame
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


def test_receiver_reference_gives_first_position_sooner_than_pair_bootstrap():
    frames = _frames()
    t0 = frames[0].rx_time
    plain = _positions(Decoder(None), frames)
    local = _positions(Decoder(AMSTERDAM), frames)
    assert plain[0][3] == "cpr_global"
    assert local[0][3] == "cpr_local"
    assert local[0][0] - t0 < 1.5 < plain[0][0] - t0
    # The early local fixes agree with the later global track.
    first_global = plain[0]
    assert haversine_km(local[0][1], local[0][2], first_global[1], first_global[2]) < 5.0


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
