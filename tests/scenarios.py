"""Scripted GA scenarios with ground truth, for the event detector (issue 7).

Each scenario is a fleet flown by the simulator at its own site; the reception model
(agent.sim.scenario.replies) decides which replies the site decodes. `truth` lists the
events an analyst watching the truth would log for the selected aircraft.
"""

from __future__ import annotations

import calendar
import io
import json
import math
from dataclasses import dataclass, field

from agent import geo
from agent.config import build_config
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline
from agent.sim.scenario import Site, received_frames, replies
from agent.sim.trajectory import (
    KT_TO_MS,
    Aircraft,
    FlightPlan,
    Kinematics,
    Land,
    Straight,
    Takeoff,
    Turn,
)

# A remote strip in Mato Grosso with no known aerodrome within 5 km.
STRIP = Site(lat=-14.90, lon=-57.80, elevation_ft=800.0)
# Cuiaba (SBCY), a known aerodrome: runway 17/35, elevation 617 ft.
SBCY = Site(lat=-15.6529, lon=-56.1167, elevation_ft=617.0)
DAY = calendar.timegm((2026, 2, 10, 14, 0, 0))  # 10:00 local (UTC-4)
NIGHT = calendar.timegm((2026, 2, 10, 6, 0, 0))  # 02:00 local


def offset(site: Site, east_m: float, north_m: float) -> tuple[float, float]:
    return geo.offset(site.lat, site.lon, east_m, north_m)


@dataclass
class Scenario:
    name: str
    site: Site
    fleet: tuple[Aircraft, ...]
    duration_s: float
    truth: set[str]  # event kinds expected (selected aircraft), beside track start/end
    epoch: float = DAY
    geofences: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    geoid_m: float = 0.0

    def run(self, seed: int = 1) -> tuple[list[dict], Pipeline]:
        site = {
            "name": self.name,
            "lat": self.site.lat,
            "lon": self.site.lon,
            "elevation_ft": self.site.elevation_ft,
            "antenna_agl_m": self.site.antenna_agl_m,
            "geoid_m": self.geoid_m,
        }
        extra = {k: v for k, v in self.config.items() if k != "site"}
        cfg = build_config({"site": site, "geofence": self.geofences, **extra})
        out = io.StringIO()
        pipeline = Pipeline(cfg, [StdoutPublisher(out)])
        frames = received_frames(replies(self.fleet, self.duration_s, seed, self.site), self.epoch)
        for f in frames:
            pipeline.handle(f)
        pipeline.tick(self.epoch + self.duration_s + 120.0)  # silence: tracks expire
        return [json.loads(line) for line in out.getvalue().splitlines()], pipeline


def _light(icao: int, callsign: str, start: Kinematics, legs, **kw) -> Aircraft:
    return Aircraft(icao=icao, callsign=callsign, category="A1", plan=FlightPlan(start, legs), **kw)


def landing_at_unknown_strip() -> Scenario:
    s = STRIP
    lat, lon = offset(s, 0.0, 12_000.0)
    start = Kinematics(lat, lon, s.elevation_ft + 2000, gs_kt=110.0, track_deg=180.0)
    # 12 km to the strip at 110 kt, descending 2000 ft, then the landing itself.
    legs = [
        Straight(150.0, climb_fpm=-500.0, to_alt_ft=s.elevation_ft + 800),
        Land(s.elevation_ft, descent_fpm=500.0, gs_kt=65.0, rollout_s=20.0),
        Straight(120.0, gs_kt=0.0),  # parked, transponder still on
    ]
    fleet = (_light(0xE49001, "PTXYZ", start, legs),)
    fence = {"name": "strip-x", "kind": "strip", "center": [s.lat, s.lon], "radius_km": 2.5}
    return Scenario("landing", s, fleet, 420.0, {"landing"}, geofences=[fence])


def helicopter_low_pass() -> Scenario:
    s = STRIP
    lat, lon = offset(s, 0.0, 6_000.0)
    start = Kinematics(lat, lon, s.elevation_ft + 1000, gs_kt=90.0, track_deg=180.0)
    legs = [
        Straight(90.0, climb_fpm=-600.0, to_alt_ft=s.elevation_ft + 150),
        Straight(40.0),  # over the strip at 150 ft
        Straight(900.0, climb_fpm=800.0, to_alt_ft=s.elevation_ft + 1200),  # and away
    ]
    heli = Aircraft(
        icao=0xE4C101,
        callsign="PRHLX",
        category="A7",
        plan=FlightPlan(start, legs),
    )
    return Scenario("low-pass", s, (heli,), 1000.0, {"low_pass"})


def circuit_at_known_aerodrome() -> Scenario:
    s = SBCY
    field_ft = s.elevation_ft
    lat, lon = offset(s, 0.0, 900.0)  # threshold of runway 17
    start = Kinematics(lat, lon, field_ft, gs_kt=0.0, track_deg=170.0, on_ground=True)
    pattern = field_ft + 1000
    circuit = [
        Straight(10.0, gs_kt=0.0),
        Takeoff(roll_s=15.0, rotate_kt=60.0),
        Straight(30.0, gs_kt=80.0, climb_fpm=800.0, to_alt_ft=pattern),
        Turn(-90.0, 5.0, climb_fpm=800.0, to_alt_ft=pattern),
        Straight(15.0, climb_fpm=800.0, to_alt_ft=pattern),
        Turn(-90.0, 5.0),
        Straight(72.0),
        Turn(-90.0, 5.0, climb_fpm=-600.0),
        Straight(15.0, climb_fpm=-600.0),
        Turn(-90.0, 5.0, climb_fpm=-600.0),
    ]
    end = FlightPlan(start, circuit)
    k = end.kinematics(end.end_s)
    to_go = math.hypot(
        (k.lat - lat) * 111_320.0, (k.lon - lon) * 111_320.0 * math.cos(math.radians(lat))
    )
    descent = (k.alt_ft - field_ft) / (max(to_go, 100.0) / (70.0 * KT_TO_MS)) * 60.0
    legs = [
        *circuit,
        Land(field_ft, descent_fpm=descent, gs_kt=70.0, rollout_s=20.0),
        Straight(60.0, gs_kt=0.0),
    ]
    fleet = (_light(0xE49002, "PPABC", start, legs),)
    return Scenario("circuit", s, fleet, 420.0, {"takeoff", "landing"})


def airliner_overhead() -> Scenario:
    s = STRIP
    lat, lon = offset(s, 1000.0, -40_000.0)
    start = Kinematics(lat, lon, 37_000.0, gs_kt=450.0, track_deg=0.0)
    jet = Aircraft(
        icao=0xE48F3B,
        callsign="TAM3055",
        category="A3",
        plan=FlightPlan(start, [Straight(600.0)]),
        gnss_minus_baro_ft=450.0,
        tx_power_db=3.0,
        position_tc=9,
    )
    return Scenario("airliner", s, (jet,), 300.0, set())


def transponder_off_low() -> Scenario:
    s = STRIP
    lat, lon = offset(s, -15_000.0, 5_000.0)
    start = Kinematics(lat, lon, s.elevation_ft + 300, gs_kt=100.0, track_deg=90.0)
    fleet = (_light(0xE49003, "PTOFF", start, [Straight(600.0)], transponder_off_s=240.0),)
    return Scenario("transponder-off", s, fleet, 400.0, {"lost_low"})


def night_flight() -> Scenario:
    s = STRIP
    lat, lon = offset(s, -20_000.0, 0.0)
    start = Kinematics(lat, lon, s.elevation_ft + 1500, gs_kt=110.0, track_deg=90.0)
    fleet = (_light(0xE49004, "PTNIT", start, [Straight(300.0)]),)
    return Scenario("night", s, fleet, 300.0, {"night_flight"}, epoch=NIGHT)


def out_of_range() -> Scenario:
    """Two light aircraft flying away until the site loses them: one at 2,500 ft (beyond
    the lost_low ceiling), one at 1,000 ft (fades out with range): no lost_low."""
    s = STRIP
    fleet = []
    for icao, cs, agl in ((0xE49005, "PTFAR", 2500), (0xE49006, "PTLOW", 1000)):
        lat, lon = offset(s, 0.0, 10_000.0)
        start = Kinematics(lat, lon, s.elevation_ft + agl, gs_kt=140.0, track_deg=0.0)
        fleet.append(_light(icao, cs, start, [Straight(1500.0)]))
    cfg = {"filter": {"max_distance_km": 400.0}}
    return Scenario("out-of-range", s, tuple(fleet), 1500.0, set(), config=cfg)


ALL = (
    landing_at_unknown_strip,
    helicopter_low_pass,
    circuit_at_known_aerodrome,
    airliner_overhead,
    transponder_off_low,
    night_flight,
    out_of_range,
)
SCORED_EVENTS = ("landing", "takeoff", "low_pass", "loiter", "lost_low", "night_flight")


def loiter_over_strip() -> Scenario:
    s = STRIP
    lat, lon = offset(s, -8_000.0, 0.0)
    start = Kinematics(lat, lon, s.elevation_ft + 1500, gs_kt=90.0, track_deg=90.0)
    legs = [
        Straight(170.0),  # to the strip
        Turn(-720.0, 3.0),  # two slow orbits (4 min) over it
        Straight(1500.0, climb_fpm=500.0, to_alt_ft=s.elevation_ft + 2500),  # and away
    ]
    fleet = (_light(0xE49007, "PTCRC", start, legs),)
    return Scenario("loiter", s, fleet, 1500.0, {"loiter"})


ALL = (*ALL, loiter_over_strip)


# A low-pressure day: QNH 998 hPa, so pressure altitude reads 416 ft above true MSL
# height; the geoid lies 15 m below the ellipsoid at the site.
QNH_OFFSET_FT = (998.0 - 1013.25) * 27.3
GEOID_M = -15.0
GNSS_MINUS_BARO_FT = round((QNH_OFFSET_FT + GEOID_M * 3.28084) / 25.0) * 25.0


def qnh_from_traffic() -> Scenario:
    """Three aircraft that send GNSS height, and one light aircraft that does not: its
    height above ground must come from the QNH estimated from the other three."""
    s = STRIP
    fleet = []
    for i, (east, agl) in enumerate(((-20_000, 3000), (15_000, 5000), (0, 7000))):
        lat, lon = offset(s, east, -20_000.0)
        start = Kinematics(
            lat, lon, s.elevation_ft + agl - QNH_OFFSET_FT, gs_kt=150.0, track_deg=0.0
        )
        fleet.append(
            Aircraft(
                icao=0xE4A000 + i,
                callsign=f"PTGN{i}",
                category="A1",
                plan=FlightPlan(start, [Straight(400.0)]),
                gnss_minus_baro_ft=GNSS_MINUS_BARO_FT,
            )
        )
    lat, lon = offset(s, -10_000.0, 0.0)
    start = Kinematics(lat, lon, s.elevation_ft + 1200 - QNH_OFFSET_FT, gs_kt=100.0, track_deg=90.0)
    legs = [
        Straight(120.0, climb_fpm=-300.0, to_alt_ft=s.elevation_ft + 600 - QNH_OFFSET_FT),
        Straight(200.0),
    ]
    fleet.append(_light(0xE4A0FF, "PTNOG", start, legs, gnss_minus_baro_ft=None))
    cfg = {"filter": {"max_height_ft": 8000}}
    return Scenario("qnh", s, tuple(fleet), 330.0, set(), config=cfg, geoid_m=GEOID_M)


def first_heard_low() -> Scenario:
    """Enters coverage already low (out of terrain shadow): first heard at 400 ft above
    the ground at 100 kt, flies low for a minute past the strip, then climbs away. A
    low pass (the profile of flying low to stay off radar), not a landing nor lost_low."""
    s = STRIP
    lat, lon = offset(s, -4_000.0, 1_000.0)
    start = Kinematics(lat, lon, s.elevation_ft + 400, gs_kt=100.0, track_deg=90.0)
    legs = [
        Straight(70.0),  # low level, past the strip
        Straight(600.0, climb_fpm=800.0, to_alt_ft=s.elevation_ft + 2500),  # and away
    ]
    fleet = (_light(0xE49009, "PTLLF", start, legs),)
    return Scenario("first-heard-low", s, fleet, 700.0, {"low_pass"})


ALL = (*ALL, first_heard_low)
