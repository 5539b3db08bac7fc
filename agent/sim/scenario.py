"""The built-in demo scenario: a remote strip, a light aircraft flying a circuit and
landing, a helicopter making a low pass, an orbit and then going silent, and an airliner
overhead at cruise.

It exists so that `adsb-agent demo` and the tests have traffic with a known truth that
touches each part of the GA filter: a light aircraft (A1) low and slow near a strip, a
rotorcraft (A7) at 300 ft AGL that loiters and switches its transponder off inside
coverage, and a large aircraft (A3) at 37,000 ft that the filter must drop.

Deterministic for a seed: each aircraft (and each of its transponder streams) draws
from its own generator, so a longer run only appends frames to a shorter one.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

from agent.frame import Frame
from agent.geo import EARTH_RADIUS_M, offset, radio_horizon_km
from agent.sim import modulate
from agent.sim.trajectory import (
    KT_TO_MS,
    Aircraft,
    FlightPlan,
    Kinematics,
    Land,
    State,
    Straight,
    Takeoff,
    Turn,
    loiter,
)

# The strip: a remote plausible spot in Mato Grosso (example values, as in config/agent.toml).
SITE_LAT = -15.60
SITE_LON = -56.10
SITE_ELEVATION_FT = 600.0
SITE_ANTENNA_AGL_M = 10.0
# Runway 27 (landing west), 1 km long, centred on the site.
RUNWAY_TRACK_DEG = 270.0
RUNWAY_LENGTH_M = 1000.0
# Scenario time 0: 2026-01-01 14:00 UTC, 10:00 local (UTC-4), so the demo is a daytime
# one and "night activity" tags are not raised by the clock alone.
EPOCH = 1_767_276_000.0

LIGHT_ICAO = 0xE48C01
HELI_ICAO = 0xE4C3D2
AIRLINER_ICAO = 0xE48F3A

# Received level: about -4 dBFS at 5 km for a 125 W transponder, falling 20 dB per
# decade of range, capped below clipping; fading jitters it by FADING_DB (1 sigma).
LEVEL_AT_5KM_DBFS = -4.0
MAX_LEVEL_DBFS = -1.0
FADING_DB = 1.0
# Reception: the chance a reply is decoded rises from 0 to 1 around DECODE_SNR_DB (the
# demodulator's 50 % point), and GARBLE of all replies are lost to overlaps anyway.
DECODE_SNR_DB = 7.0
DECODE_SNR_SPREAD_DB = 1.0
GARBLE = 0.02


@dataclass(frozen=True, slots=True)
class Sent:
    """One reply on air and what became of it at the site."""

    t: float  # scenario seconds
    msg: bytes
    icao: int
    level_dbfs: float
    received: bool


@dataclass(frozen=True)
class DemoTruth:
    """Everything the scenario knows: aircraft (with their full trajectories) and replies."""

    epoch: float
    duration_s: float
    aircraft: tuple[Aircraft, ...]
    sent: tuple[Sent, ...]

    def by_hex(self, icao_hex: str) -> Aircraft:
        for ac in self.aircraft:
            if ac.icao_hex == icao_hex.upper():
                return ac
        raise KeyError(icao_hex)

    def state_at(self, icao_hex: str, rx_time: float) -> State:
        """Truth for an aircraft at a receive time (epoch seconds, as on Frames)."""
        return self.by_hex(icao_hex).state(rx_time - self.epoch)


def _light_aircraft() -> Aircraft:
    """A1 "PTABC": lines up on runway 27, takes off, flies a left circuit at 1000 ft AGL
    (80 kt, 5 deg/s turns) and lands, touching down near the threshold it left from."""
    field = SITE_ELEVATION_FT
    pattern = field + 1000.0
    lat, lon = offset(SITE_LAT, SITE_LON, RUNWAY_LENGTH_M / 2, 0.0)  # threshold 27
    start = Kinematics(lat, lon, field, gs_kt=0.0, track_deg=RUNWAY_TRACK_DEG, on_ground=True)
    circuit = [
        Straight(10.0, gs_kt=0.0),  # lined up, holding
        Takeoff(roll_s=15.0, rotate_kt=60.0),
        Straight(30.0, gs_kt=80.0, climb_fpm=800.0, to_alt_ft=pattern),  # upwind
        Turn(-90.0, 5.0, climb_fpm=800.0, to_alt_ft=pattern),
        Straight(15.0, climb_fpm=800.0, to_alt_ft=pattern),  # crosswind
        Turn(-90.0, 5.0, climb_fpm=800.0, to_alt_ft=pattern),
        Straight(72.0),  # downwind, level at 1000 ft AGL
        Turn(-90.0, 5.0, climb_fpm=-600.0),
        Straight(15.0, climb_fpm=-600.0),  # base
        Turn(-90.0, 5.0, climb_fpm=-600.0),  # onto final
    ]
    # Final: a constant descent that reaches the field at the threshold.
    plan = FlightPlan(start, circuit)
    end = plan.kinematics(plan.end_s)
    east_to_go = (end.lon - lon) * 111_320.0 * math.cos(math.radians(lat))
    land_gs = 70.0
    final_s = max(east_to_go, 100.0) / (land_gs * KT_TO_MS)
    descent = (end.alt_ft - field) / final_s * 60.0
    legs = [*circuit, Land(field, descent_fpm=descent, gs_kt=land_gs, rollout_s=20.0)]
    return Aircraft(
        icao=LIGHT_ICAO,
        callsign="PTABC",
        category="A1",
        plan=FlightPlan(start, legs),
        squawk="2000",
        gnss_minus_baro_ft=-75.0,
        radar_period_s=12.0,
    )


def _helicopter() -> Aircraft:
    """A7 "PRHLC": comes from the north descending to 300 ft AGL, passes 300 m west of
    the strip, orbits once 1.5 km south, heads east and switches off at t = 240 s."""
    low = SITE_ELEVATION_FT + 300.0
    lat, lon = offset(SITE_LAT, SITE_LON, -300.0, 7000.0)
    start = Kinematics(lat, lon, 1500.0, gs_kt=100.0, track_deg=180.0)
    legs = [
        Straight(60.0, climb_fpm=-600.0, to_alt_ft=low),
        Straight(85.0),  # the low pass
        loiter(60.0, 6.0, right=False),  # one orbit (360 deg at 6 deg/s)
        Turn(-90.0, 6.0),  # away to the east
        Straight(600.0),
    ]
    return Aircraft(
        icao=HELI_ICAO,
        callsign="PRHLC",
        category="A7",
        plan=FlightPlan(start, legs),
        squawk="2000",
        gnss_minus_baro_ft=-50.0,
        transponder_off_s=240.0,
        radar_period_s=None,  # below secondary radar cover
    )


def _airliner() -> Aircraft:
    """A3 "TAM3054": FL370 at 450 kt on track 020, passing 2 km east of the site at
    t = 150 s; interrogated by en-route radar every 10 s; GNSS vertical rate."""
    gs = 450.0
    back = 150.0 * gs * KT_TO_MS
    trk = math.radians(20.0)
    lat, lon = offset(SITE_LAT, SITE_LON, 2000.0 - back * math.sin(trk), -back * math.cos(trk))
    start = Kinematics(lat, lon, 37000.0, gs_kt=gs, track_deg=20.0)
    return Aircraft(
        icao=AIRLINER_ICAO,
        callsign="TAM3054",
        category="A3",
        plan=FlightPlan(start, [Straight(3600.0)]),
        squawk="4521",
        gnss_minus_baro_ft=475.0,
        radar_period_s=10.0,
        vr_baro=False,
        position_tc=9,
        tx_power_db=3.0,
    )


def aircraft() -> tuple[Aircraft, ...]:
    """The three scripted aircraft (fresh objects; they are immutable anyway)."""
    return (_light_aircraft(), _helicopter(), _airliner())


@dataclass(frozen=True, slots=True)
class Site:
    """Where the receiver is, for the reception model."""

    lat: float = SITE_LAT
    lon: float = SITE_LON
    elevation_ft: float = SITE_ELEVATION_FT
    antenna_agl_m: float = SITE_ANTENNA_AGL_M


DEMO_SITE = Site()


def slant_range_m(s: State, site: Site = DEMO_SITE) -> float:
    """Distance from the site antenna to the aircraft, metres."""
    north = math.radians(s.lat - site.lat) * EARTH_RADIUS_M
    east = math.radians(s.lon - site.lon) * EARTH_RADIUS_M * math.cos(math.radians(site.lat))
    up = (s.alt_ft - site.elevation_ft) * 0.3048 - site.antenna_agl_m
    return math.sqrt(north * north + east * east + up * up)


def level_dbfs(s: State, tx_power_db: float, site: Site = DEMO_SITE) -> float:
    """Mean received pulse level of a reply from `s` (before fading)."""
    km = max(slant_range_m(s, site) / 1000.0, 0.05)
    return min(LEVEL_AT_5KM_DBFS + tx_power_db - 20.0 * math.log10(km / 5.0), MAX_LEVEL_DBFS)


def replies(
    fleet: tuple[Aircraft, ...], duration_s: float, seed: int, site: Site = DEMO_SITE
) -> list[Sent]:
    """Every reply of every aircraft in [0, duration_s) with its level and fate at `site`:
    beyond the radio horizon nothing arrives; otherwise the chance of a decode follows
    the reply's SNR, and a share is lost to garbling."""
    root = np.random.SeedSequence(seed)
    sent: list[Sent] = []
    for ac, seq in zip(fleet, root.spawn(len(fleet)), strict=True):
        tx_seq, rx_seq = seq.spawn(2)
        rx = np.random.default_rng(rx_seq)
        for t, msg in ac.transmissions(0.0, duration_s, np.random.default_rng(tx_seq)):
            s = ac.state(t)
            level = level_dbfs(s, ac.tx_power_db, site) + float(rx.normal(0.0, FADING_DB))
            level = min(level, MAX_LEVEL_DBFS)
            snr = modulate.snr_db_for_level(level)
            p = 1.0 / (1.0 + math.exp(-(snr - DECODE_SNR_DB) / DECODE_SNR_SPREAD_DB))
            height_m = (s.alt_ft - site.elevation_ft) * 0.3048
            visible = (
                slant_range_m(s, site) <= radio_horizon_km(site.antenna_agl_m, height_m) * 1000.0
            )
            ok = visible and float(rx.uniform()) < p * (1.0 - GARBLE)
            sent.append(Sent(t=t, msg=msg, icao=ac.icao, level_dbfs=level, received=ok))
    sent.sort(key=lambda x: x.t)
    return sent


def received_frames(sent: list[Sent], epoch: float = EPOCH) -> list[Frame]:
    """The frames the site decoded, timed from `epoch` (rx_time = epoch + scenario t)."""
    return [
        Frame(
            msg=x.msg,
            rx_time=round(epoch + x.t, 6),
            signal_dbfs=round(x.level_dbfs, 1),
            source="sim",
        )
        for x in sent
        if x.received
    ]


def _on_air(duration_s: float, seed: int) -> list[Sent]:
    return replies(aircraft(), duration_s, seed)


def demo_frames(duration_s: float = 300.0, seed: int = 1) -> tuple[list[Frame], DemoTruth]:
    """Frames the site receives in the first `duration_s` of the scenario, sorted by time.

    Returns:
        (frames with rx_time = EPOCH + scenario time, signal_dbfs from range and
        fading, source "sim"; the truth with every reply sent, received or not).
    """
    sent = _on_air(duration_s, seed)
    frames = received_frames(sent)
    truth = DemoTruth(epoch=EPOCH, duration_s=duration_s, aircraft=aircraft(), sent=tuple(sent))
    return frames, truth


def render_demo_iq(
    start_s: float,
    duration_s: float,
    *,
    sample_rate: float = 2.4e6,
    fmt: str = "uc8",
    seed: int = 1,
    snr_db: float | None = None,
) -> tuple[bytes, list[tuple[int, bytes]]]:
    """IQ of the scenario's air from `start_s` for `duration_s` (every reply sent).

    Args:
        snr_db: give every reply this SNR; None derives it from range and fading,
            so far or faded replies are weak as on a real site.
    Returns:
        (IQ bytes, [(sample index from the first sample, frame)]).
    """
    if start_s < 0 or duration_s <= 0:
        raise ValueError("render from start_s >= 0 for a positive duration")
    stop = start_s + duration_s
    sent = _on_air(stop, seed)
    lo = bisect_left([x.t for x in sent], start_s)
    bursts = [
        modulate.Burst(
            t=x.t - start_s,
            msg=x.msg,
            snr_db=modulate.snr_db_for_level(x.level_dbfs) if snr_db is None else snr_db,
        )
        for x in sent[lo:]
    ]
    rng = np.random.default_rng([seed, round(start_s * 1000)])
    return modulate.render(bursts, duration_s, sample_rate=sample_rate, fmt=fmt, rng=rng)
