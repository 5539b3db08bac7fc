"""GA intelligence pieces: terrain, height and QNH, classification, places, sun, events."""

from __future__ import annotations

import calendar
import threading

import numpy as np
import pytest

from agent.intel.aerodromes import Aerodromes
from agent.intel.classify import classify_callsign, country_mismatch, squawk_meaning
from agent.intel.events import TrackAnalyst
from agent.intel.geofence import Geofence
from agent.intel.height import HeightModel
from agent.intel.sun import sun_elevation_deg
from agent.intel.terrain import Terrain, tile_name
from agent.schema import EventKind
from agent.track import Aircraft

# A remote spot in Mato Grosso, Brazil, with no aerodrome within 5 km.
STRIP = (-14.90, -57.80)


def _hgt(tmp_path, lat: int, lon: int, side: int, fill) -> None:
    ys, xs = np.mgrid[0:side, 0:side]
    (tmp_path / tile_name(lat + 0.5, lon + 0.5)).write_bytes(fill(ys, xs).astype(">i2").tobytes())


def test_terrain_reads_big_endian_tiles_north_to_south(tmp_path):
    # 3" tile whose height is the row number (0 at the north edge) in metres.
    _hgt(tmp_path, -15, -58, 1201, lambda ys, xs: ys)
    t = Terrain(tmp_path)
    assert t.elevation_ft(-14.0001, -57.5) == pytest.approx(0.12 * 3.28084, abs=0.5)
    assert t.elevation_ft(-14.5, -57.5) == pytest.approx(600 * 3.28084, abs=1)
    assert t.elevation_ft(10.0, 10.0) is None  # no tile


def test_terrain_voids_are_unknown(tmp_path):
    _hgt(tmp_path, -15, -58, 1201, lambda ys, xs: np.where(xs > 600, -32768, 100))
    t = Terrain(tmp_path)
    assert t.elevation_ft(-14.5, -57.9) == pytest.approx(328.1, abs=0.5)
    assert t.elevation_ft(-14.5, -57.1) is None


def test_qnh_estimated_from_traffic_corrects_barometric_altitude():
    # A low-pressure day: QNH 995 hPa, so pressure altitude reads ~500 ft high.
    model = HeightModel(600.0, geoid_m=-20.0)
    offset = (995.0 - 1013.25) * 27.3
    for msl in range(1500, 9000, 500):  # other aircraft send both altitudes
        model.observe(round(msl - offset), round(msl + (-20.0 * 3.28084)))
    h = model.height(round(1600 - offset), None, None, None)  # our GA: baro only
    assert h.source == "baro_traffic"
    assert h.agl_ft == pytest.approx(1000, abs=10)


def test_height_sources_in_order_of_trust(tmp_path):
    _hgt(tmp_path, -15, -58, 1201, lambda ys, xs: np.full_like(ys, 300))
    model = HeightModel(600.0, qnh_hpa=1013.25, terrain=Terrain(tmp_path))
    gnss = model.height(1500, 2000, -14.5, -57.5)
    assert (gnss.source, gnss.ground) == ("gnss", "terrain")
    assert gnss.agl_ft == pytest.approx(2000 - 984, abs=2)
    baro = model.height(1500, None, 20.0, 20.0)
    assert (baro.source, baro.ground, baro.agl_ft) == ("baro_qnh", "site", 900)
    assert HeightModel(600.0).height(1500, None, None, None).source == "baro_std"


def test_callsigns_classified_and_nationality_compared():
    assert classify_callsign("PTABC").kind == "registration"
    assert classify_callsign("PTABC").country == "BR"
    assert classify_callsign("TAM3054").kind == "airline"
    assert classify_callsign("N123AB").country == "US"
    assert country_mismatch(classify_callsign("N123AB"), "BR")
    assert not country_mismatch(classify_callsign("PTABC"), "BR")
    assert not country_mismatch(classify_callsign("TAM3054"), "BR")
    assert squawk_meaning("7500") == "unlawful_interference"
    assert squawk_meaning("4321") is None


def test_geofence_circle_and_polygon():
    circle = Geofence("strip", "strip", STRIP, 2.0)
    assert circle.contains(-14.91, -57.80) and not circle.contains(-14.95, -57.80)
    square = Geofence("box", "border", polygon=((-15, -58.5), (-15, -58), (-16, -58), (-16, -58.5)))
    assert square.contains(-15.5, -58.2) and not square.contains(-15.5, -57.9)


def test_sun_elevation_known_values():
    noon_equinox = calendar.timegm((2024, 3, 20, 12, 7, 0))
    assert sun_elevation_deg(0.0, 0.0, noon_equinox) == pytest.approx(90, abs=1.5)
    assert sun_elevation_deg(51.48, 0.0, noon_equinox) == pytest.approx(38.5, abs=1.0)
    midnight = calendar.timegm((2024, 6, 21, 0, 0, 0))
    assert sun_elevation_deg(51.48, 0.0, midnight) < -10


def test_aerodromes_nearest_and_away():
    a = Aerodromes.load()
    assert len(a) > 20_000
    assert a.nearest(-15.6529, -56.1167).code == "SBCY"  # Cuiaba
    assert a.nearest(*STRIP) is None


# --- events on scripted aircraft states -------------------------------------------

T0 = calendar.timegm((2026, 1, 15, 15, 0, 0))  # 11:00 local in Mato Grosso: daylight


class _Fly:
    """Feeds an analyst a sequence of (dt, lat, lon, agl, gs, track) states."""

    def __init__(self, analyst: TrackAnalyst, model: HeightModel):
        self.analyst, self.model = analyst, model
        self.ac = Aircraft("E48A00", T0, T0, country="BR", callsign="PTABC", category="A1")
        self.t = T0
        self.events: list[tuple[str, tuple[str, ...]]] = []

    def step(self, dt, lat, lon, agl, gs, track):
        self.t += dt
        ac = self.ac
        ac.lat, ac.lon, ac.alt_baro_ft, ac.gs_kt, ac.track_deg = (
            lat,
            lon,
            round(agl + 600),
            gs,
            track,
        )
        ac.last_seen = self.t
        ac.messages += 1
        ac.height = self.model.height(ac.alt_baro_ft, None, lat, lon)
        self.events += [(e.kind, e.tags) for e in self.analyst.update(ac, self.t, True)]

    def end(self):
        self.events += [(e.kind, e.tags) for e in self.analyst.end(self.ac, self.t + 60)]
        return [k for k, _ in self.events]


def _analyst() -> tuple[TrackAnalyst, HeightModel]:
    fences = [Geofence("strip-x", "strip", STRIP, 2.0)]
    return TrackAnalyst(STRIP, 10.0, fences, Aerodromes.load()), HeightModel(600.0, qnh_hpa=1013.25)


def test_landing_away_from_aerodromes_then_takeoff():
    fly = _Fly(*_analyst())
    lat, lon = STRIP[0] + 0.05, STRIP[1]
    for i in range(60):  # approach from 5.5 km north, 1000 ft down to the ground
        fly.step(1.0, lat - i * 0.05 / 60, lon, max(0, 1000 - i * 17), 80 - i * 0.7, 180.0)
    for _ in range(30):  # rolled out and stopped
        fly.step(1.0, STRIP[0], lon, 0, 5, 180.0)
    for i in range(100):  # takes off again and climbs out to 2,500 ft
        fly.step(1.0, STRIP[0] - i * 0.0005, lon, i * 25, 70 + i * 0.3, 180.0)
    kinds = fly.end()
    assert kinds == [
        EventKind.LANDING,
        EventKind.TAKEOFF,
    ]  # a climb-out is no low pass; it left high
    tags = dict(fly.events)[EventKind.LANDING]
    assert "in:strip-x" in tags and "away_from_aerodromes" in tags


def test_transponder_off_at_300_ft_is_lost_low_but_high_exit_is_not():
    fly = _Fly(*_analyst())
    for i in range(60):
        fly.step(1.0, STRIP[0] + 0.02 - i * 0.0003, STRIP[1], 300, 90, 180.0)
    assert fly.end().count(EventKind.LOST_LOW) == 1
    far = _Fly(*_analyst())  # airliner-like: high and at the edge of coverage
    for i in range(60):
        far.step(1.0, STRIP[0] + 2.0 + i * 0.001, STRIP[1], 1400, 200, 0.0)
    assert EventKind.LOST_LOW not in far.end()


def test_low_pass_and_loiter():
    fly = _Fly(*_analyst())
    for i in range(60):  # dive to 150 ft over the strip at 90 kt and climb away
        agl = 150 + abs(i - 30) * 30
        fly.step(1.0, STRIP[0] + 0.015 - i * 0.0005, STRIP[1], agl, 90, 180.0)
    assert fly.end().count(EventKind.LOW_PASS) == 1
    circle = _Fly(*_analyst())
    for i in range(400):  # 2 turns a minute on a 1 km circle, for 400 s
        a = i * 6.0
        lat = STRIP[0] + 0.009 * np.cos(np.radians(a))
        lon = STRIP[1] + 0.009 * np.sin(np.radians(a))
        circle.step(1.0, lat, lon, 1500, 70, (a + 90) % 360)
    assert circle.end().count(EventKind.LOITER) == 1


def test_night_flight_tagged_once():
    fly = _Fly(*_analyst())
    fly.t = calendar.timegm((2026, 1, 15, 4, 0, 0))  # 00:00 local
    for i in range(10):
        fly.step(1.0, STRIP[0] + i * 0.001, STRIP[1], 2000, 100, 0.0)
    assert fly.end().count(EventKind.NIGHT_FLIGHT) == 1


def test_aerodromes_within_a_radius_agree_with_the_nearest_one():
    from agent.intel.aerodromes import Aerodromes

    table = Aerodromes.load()
    lat, lon = -15.6, -56.1  # Cuiaba: SBCY and a cluster of strips
    found = table.within(lat, lon, 100.0)
    assert len(found) > 3
    assert [km for _, km in found] == sorted(km for _, km in found)
    assert all(km <= 100.0 for _, km in found)
    assert found[0][0] == table.nearest(lat, lon, 100.0)


def test_a_deferred_table_is_built_on_its_first_lookup_and_is_the_same_table():
    from agent.intel.aerodromes import Aerodromes

    deferred = Aerodromes.deferred()
    assert deferred._pending is not None  # nothing read yet
    lat, lon = -15.6, -56.1
    assert deferred.nearest(lat, lon) == Aerodromes.load().nearest(lat, lon)
    assert deferred._pending is None
    assert len(deferred) == len(Aerodromes.load())
    assert deferred.within(lat, lon, 50.0) == Aerodromes.load().within(lat, lon, 50.0)


def test_lookups_from_two_threads_wait_for_one_build():
    from agent.intel.aerodromes import Aerodromes

    deferred = Aerodromes.deferred()
    expected = Aerodromes.load().within(-15.6, -56.1, 100.0)
    found: list[object] = []
    threads = [
        threading.Thread(target=lambda: found.append(deferred.within(-15.6, -56.1, 100.0)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == [expected] * 4
