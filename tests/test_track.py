"""Tracker: aircraft state from real decoded frames; time from the frames."""

from __future__ import annotations

from agent.decode import Decoder
from agent.track import Tracker
from tests.conftest import shared_data
from tests.helpers import opensky_frames, pms_adsb_frames


def _track(frames, expire_s=60.0):
    decoder, tracker = Decoder(None), Tracker(expire_s)
    for f in frames:
        fields = decoder.decode(f)
        if fields:
            tracker.update(fields, f.rx_time, -20.0)
    return tracker


def test_real_aircraft_gets_position_altitude_velocity_identity_country():
    frames = opensky_frames(
        shared_data("opensky/484506_position.tsv"),
        shared_data("opensky/484506_velocity.tsv"),
        shared_data("opensky/484506_identification.tsv"),
    )
    ac = _track(frames).aircraft["484506"]
    assert ac.country == "NL"
    assert ac.lat is not None and 50 < ac.lat < 55 and 3 < ac.lon < 8
    assert ac.alt_baro_ft is not None and ac.gs_kt is not None and ac.track_deg is not None
    assert ac.vrate_fpm is not None
    assert ac.callsign and ac.callsign.isalnum()
    assert ac.category is not None and ac.category[0] in "ABCD"
    assert ac.on_ground is False
    assert ac.first_seen == frames[0].rx_time and ac.last_seen == frames[-1].rx_time
    assert ac.messages == len(frames)
    assert ac.signal_dbfs == -20.0


def test_gnss_altitude_follows_geo_minus_baro():
    frames = pms_adsb_frames(shared_data("messages/pms_sample_data_adsb.csv"))
    ac = _track(frames).aircraft["406B90"]
    assert ac.geo_minus_baro_ft is not None
    assert ac.alt_gnss_ft == ac.alt_baro_ft + ac.geo_minus_baro_ft


def test_silent_aircraft_expire_by_frame_time():
    frames = pms_adsb_frames(shared_data("messages/pms_sample_data_adsb.csv"))
    tracker = _track(frames[:50], expire_s=30.0)
    last = frames[49].rx_time
    assert tracker.expire(last + 29.0) == []
    gone = tracker.expire(last + 31.0)
    assert [ac.icao for ac in gone] == ["406B90"]
    assert tracker.aircraft == {}
