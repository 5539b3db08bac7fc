"""Position limiter: FlightAware's change-based policy."""

from __future__ import annotations

from agent.limiter import PositionLimiter
from agent.track import Aircraft


def _ac(**kw) -> Aircraft:
    base = dict(
        icao="E48A00",
        first_seen=0.0,
        last_seen=0.0,
        alt_baro_ft=1500,
        gs_kt=90.0,
        track_deg=90.0,
        vrate_fpm=0,
        on_ground=False,
    )
    base.update(kw)
    return Aircraft(**base)


def _sent_times(updates) -> list[float]:
    lim = PositionLimiter()
    return [t for t, ac in updates if lim.should_send(ac, t)]


def test_steady_low_flight_every_ten_seconds():
    assert _sent_times([(t * 0.5, _ac()) for t in range(61)]) == [0.0, 10.0, 20.0, 30.0]


def test_turning_low_flight_every_five_seconds():
    updates = [(t * 0.5, _ac(track_deg=(90 + 3 * t * 0.5) % 360)) for t in range(41)]
    assert _sent_times(updates) == [0.0, 5.0, 10.0, 15.0, 20.0]


def test_high_flight_thirty_seconds_and_ground_every_second():
    high = [(float(t), _ac(alt_baro_ft=37000)) for t in range(61)]
    assert _sent_times(high) == [0.0, 30.0, 60.0]
    ground = [(t * 0.5, _ac(on_ground=True, gs_kt=10.0)) for t in range(7)]
    assert _sent_times(ground) == [0.0, 1.0, 2.0, 3.0]


def test_identity_changes_are_sent_at_once():
    updates = [
        (0.0, _ac()),
        (0.5, _ac(squawk="7700")),
        (1.0, _ac(squawk="7700")),
        (1.5, _ac(squawk="7700", callsign="PTABC")),
    ]
    assert _sent_times(updates) == [0.0, 0.5, 1.5]


def test_track_wraps_around_north():
    lim = PositionLimiter()
    assert lim.should_send(_ac(track_deg=359.5), 0.0)
    assert not lim.should_send(_ac(track_deg=0.5), 6.0)  # 1 deg apart, not 359


def test_position_off_the_dead_reckoned_line_goes_at_once():
    lim = PositionLimiter()
    # 100 kt due east: 51.4 m/s; after 4 s it should be 206 m east of the first point.
    assert lim.should_send(_ac(lat=0.0, lon=0.0, gs_kt=100.0, track_deg=90.0), 0.0)
    on_line = _ac(lat=0.0, lon=205.0 / 111_195.0, gs_kt=100.0, track_deg=90.0)
    assert not lim.should_send(on_line, 4.0)
    turned = _ac(lat=-150.0 / 111_195.0, lon=150.0 / 111_195.0, gs_kt=100.0, track_deg=90.0)
    assert lim.should_send(turned, 4.5)  # velocity not heard yet, but it turned south
    assert lim.counts["sent_deviation"] == 1
