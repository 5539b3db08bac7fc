"""Scripted aircraft: a flight plan of legs gives the truth state at any time, and the
transponder model turns that truth into timed Mode S frames.

The truth is analytic (each leg is a closed-form function of time from its start
state), so a test can ask where an aircraft really was at the exact time a frame was
sent and compare it with what the pipeline decoded.

Positions move on a local rhumb-line approximation of the sphere: exact enough over
the few hundred kilometres a receiver hears, and the truth is by definition what the
model says, so the encoders and tests agree with it to the bit.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from agent.geo import EARTH_RADIUS_M
from agent.sim import encode

KT_TO_MS = 1852.0 / 3600.0
FPM_TO_FTS = 1.0 / 60.0

# Transmission periods (s) from DO-260B / Annex 10: each squitter is re-sent after a
# uniformly random interval in [period * (1 - JITTER), period * (1 + JITTER)], which is
# how real transponders avoid locking step with each other.
POSITION_PERIOD_S = 0.5
VELOCITY_PERIOD_S = 0.5
IDENT_PERIOD_S = 5.0
ALLCALL_PERIOD_S = 1.0
STATUS_PERIOD_S = 5.0  # TC 28 aircraft status, normal
STATUS_EMERGENCY_PERIOD_S = 0.8  # TC 28 while an emergency squawk is set
SURFACE_STILL_PERIOD_S = 5.0  # surface position when not moving
JITTER = 0.2
# Below this ground speed a surface transponder reports "not moving" rates.
MOVING_KT = 1.0
# DF5 follows the DF4 of the same radar roll-call this much later.
ROLLCALL_GAP_S = 0.03


def spawn_generators(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    """`rng.spawn(n)`, also on numpy 1.24 (Debian bookworm's python3-numpy, which the
    Pi install uses), where `Generator.spawn` does not exist yet (it came in 1.25).

    The fallback does what 1.25's `spawn` does (children of the generator's own seed
    sequence, on the same bit generator type), so both give the same draws and the
    same frames.
    """
    if hasattr(rng, "spawn"):
        return rng.spawn(n)
    bits = rng.bit_generator
    return [np.random.Generator(type(bits)(seq)) for seq in bits._seed_seq.spawn(n)]


@dataclass(frozen=True, slots=True)
class State:
    """Truth at one instant.

    Attributes:
        t: time (s) on the flight plan's clock.
        alt_ft: barometric (pressure) altitude, what Mode S reports.
        gnss_alt_ft: GNSS height; differs from baro by the aircraft's offset.
        track_deg: true track over ground, 0-360.
        vrate_fpm: vertical rate, positive up.
    """

    t: float
    lat: float
    lon: float
    alt_ft: float
    gnss_alt_ft: float
    gs_kt: float
    track_deg: float
    vrate_fpm: float
    on_ground: bool


@dataclass(frozen=True, slots=True)
class Kinematics:
    """What one leg hands to the next: where, how high, how fast, which way."""

    lat: float
    lon: float
    alt_ft: float
    gs_kt: float
    track_deg: float
    vrate_fpm: float = 0.0
    on_ground: bool = False


def _move(k: Kinematics, east_m: float, north_m: float) -> tuple[float, float]:
    """Lat/lon after a local displacement (rhumb line, mean-latitude longitude scale)."""
    lat = k.lat + math.degrees(north_m / EARTH_RADIUS_M)
    mid = math.radians((k.lat + lat) / 2.0)
    lon = k.lon + math.degrees(east_m / (EARTH_RADIUS_M * max(math.cos(mid), 1e-6)))
    return lat, (lon + 180.0) % 360.0 - 180.0


def _vertical(
    alt_ft: float, climb_fpm: float, to_alt_ft: float | None, dt: float
) -> tuple[float, float]:
    """Altitude and vertical rate after dt of climbing (or descending) towards a target."""
    if climb_fpm == 0.0:
        return alt_ft, 0.0
    alt = alt_ft + climb_fpm * FPM_TO_FTS * dt
    if to_alt_ft is not None and (alt - to_alt_ft) * climb_fpm >= 0.0:
        return to_alt_ft, 0.0
    return alt, climb_fpm


class Leg(Protocol):
    """One piece of a flight plan: a closed-form function of time from its start state."""

    def duration(self, start: Kinematics) -> float: ...

    def at(self, start: Kinematics, dt: float) -> Kinematics: ...


@dataclass(frozen=True, slots=True)
class Straight:
    """Constant track for `duration_s`; optional new speed and a climb/descent to a level.

    On the ground with gs 0 this is a wait (taxi hold, parked).
    """

    duration_s: float
    gs_kt: float | None = None
    climb_fpm: float = 0.0
    to_alt_ft: float | None = None

    def duration(self, start: Kinematics) -> float:
        return self.duration_s

    def at(self, start: Kinematics, dt: float) -> Kinematics:
        gs = start.gs_kt if self.gs_kt is None else self.gs_kt
        d = gs * KT_TO_MS * dt
        trk = math.radians(start.track_deg)
        lat, lon = _move(start, d * math.sin(trk), d * math.cos(trk))
        climb = 0.0 if start.on_ground else self.climb_fpm
        alt, vr = _vertical(start.alt_ft, climb, self.to_alt_ft, dt)
        return replace(start, lat=lat, lon=lon, alt_ft=alt, gs_kt=gs, vrate_fpm=vr)


@dataclass(frozen=True, slots=True)
class Turn:
    """Constant-rate turn through `degrees` (positive right/clockwise, negative left).

    A standard-rate turn is 3 deg/s; 360 or more degrees is an orbit (loiter) over a
    point, the pattern a police or survey flight, or a drop, leaves in the track.
    """

    degrees: float
    rate_dps: float = 3.0
    gs_kt: float | None = None
    climb_fpm: float = 0.0
    to_alt_ft: float | None = None

    def duration(self, start: Kinematics) -> float:
        return abs(self.degrees) / self.rate_dps

    def at(self, start: Kinematics, dt: float) -> Kinematics:
        gs = start.gs_kt if self.gs_kt is None else self.gs_kt
        side = 1.0 if self.degrees >= 0 else -1.0
        omega = side * math.radians(self.rate_dps)  # signed, rad/s
        v = gs * KT_TO_MS
        psi0 = math.radians(start.track_deg)
        psi = psi0 + omega * dt
        east = v / omega * (math.cos(psi0) - math.cos(psi))
        north = v / omega * (math.sin(psi) - math.sin(psi0))
        lat, lon = _move(start, east, north)
        climb = 0.0 if start.on_ground else self.climb_fpm
        alt, vr = _vertical(start.alt_ft, climb, self.to_alt_ft, dt)
        trk = math.degrees(psi) % 360.0
        return replace(start, lat=lat, lon=lon, alt_ft=alt, gs_kt=gs, track_deg=trk, vrate_fpm=vr)


def loiter(duration_s: float, rate_dps: float = 3.0, *, right: bool = True) -> Turn:
    """A holding circle for `duration_s` at `rate_dps` (an orbit of 360/rate seconds)."""
    return Turn(degrees=(1.0 if right else -1.0) * rate_dps * duration_s, rate_dps=rate_dps)


@dataclass(frozen=True, slots=True)
class Land:
    """Descend on the current track to the field, touch down, roll out and stop.

    The approach keeps `gs_kt` and `descent_fpm` until the altitude reaches
    `field_elev_ft`; the rollout decelerates evenly to a stop in `rollout_s`, on the
    ground. After the leg the aircraft stays parked on the ground.
    """

    field_elev_ft: float
    descent_fpm: float = 500.0
    gs_kt: float = 65.0
    rollout_s: float = 20.0

    def _approach_s(self, start: Kinematics) -> float:
        return max(start.alt_ft - self.field_elev_ft, 0.0) / (abs(self.descent_fpm) * FPM_TO_FTS)

    def duration(self, start: Kinematics) -> float:
        return self._approach_s(start) + self.rollout_s

    def at(self, start: Kinematics, dt: float) -> Kinematics:
        t_app = self._approach_s(start)
        trk = math.radians(start.track_deg)
        v = self.gs_kt * KT_TO_MS
        if dt < t_app:
            d = v * dt
            lat, lon = _move(start, d * math.sin(trk), d * math.cos(trk))
            alt = start.alt_ft - abs(self.descent_fpm) * FPM_TO_FTS * dt
            return replace(
                start,
                lat=lat,
                lon=lon,
                alt_ft=alt,
                gs_kt=self.gs_kt,
                vrate_fpm=-abs(self.descent_fpm),
            )
        tr = min(dt - t_app, self.rollout_s)
        decel = v / self.rollout_s if self.rollout_s > 0 else 0.0
        d = v * t_app + v * tr - 0.5 * decel * tr * tr
        lat, lon = _move(start, d * math.sin(trk), d * math.cos(trk))
        gs = max(self.gs_kt * (1.0 - tr / self.rollout_s), 0.0) if self.rollout_s > 0 else 0.0
        return replace(
            start,
            lat=lat,
            lon=lon,
            alt_ft=self.field_elev_ft,
            gs_kt=gs,
            vrate_fpm=0.0,
            on_ground=True,
        )


@dataclass(frozen=True, slots=True)
class Takeoff:
    """Ground roll from the current speed to `rotate_kt` in `roll_s`, then lift off.

    The aircraft is on the ground during the roll and airborne at the field elevation
    when the leg ends; the next leg does the climbing.
    """

    roll_s: float = 20.0
    rotate_kt: float = 60.0

    def duration(self, start: Kinematics) -> float:
        return self.roll_s

    def at(self, start: Kinematics, dt: float) -> Kinematics:
        v0 = start.gs_kt * KT_TO_MS
        acc = (self.rotate_kt * KT_TO_MS - v0) / self.roll_s
        t = min(dt, self.roll_s)
        d = v0 * t + 0.5 * acc * t * t
        trk = math.radians(start.track_deg)
        lat, lon = _move(start, d * math.sin(trk), d * math.cos(trk))
        gs = (v0 + acc * t) / KT_TO_MS
        return replace(start, lat=lat, lon=lon, gs_kt=gs, vrate_fpm=0.0, on_ground=dt < self.roll_s)


class FlightPlan:
    """A start state and legs flown one after another; `state(t)` for any t >= 0.

    Before t = 0 the aircraft is at its start state; after the last leg it keeps its
    last track and speed, level (or stays parked if on the ground).
    """

    def __init__(self, start: Kinematics, legs: Sequence[Leg]):
        self.start = start
        self.legs = tuple(legs)
        self._t0: list[float] = []
        self._k0: list[Kinematics] = []
        t, k = 0.0, start
        for leg in self.legs:
            self._t0.append(t)
            self._k0.append(k)
            dur = leg.duration(k)
            if dur < 0:
                raise ValueError(f"leg {leg!r} has negative duration")
            k = leg.at(k, dur)
            t += dur
        self.end_s = t
        self._end = replace(k, vrate_fpm=0.0)
        self._coast = Straight(duration_s=math.inf)

    def kinematics(self, t: float) -> Kinematics:
        if t <= 0.0 or not self.legs:
            return self.start if t <= 0.0 else self._coast.at(self._end, t - self.end_s)
        if t >= self.end_s:
            return self._coast.at(self._end, t - self.end_s)
        i = bisect_right(self._t0, t) - 1
        return self.legs[i].at(self._k0[i], t - self._t0[i])


def emergency_state(squawk: str) -> int:
    """TC 28 emergency state implied by a squawk (0 when it is not an emergency code)."""
    return encode.EMERGENCY_SQUAWKS.get(squawk, encode.EMERGENCY_NONE)


@dataclass(frozen=True)
class Aircraft:
    """A transponder-equipped aircraft flying a plan, on the scenario clock.

    Attributes:
        icao: 24-bit address.
        category: emitter category, "A1" light, "A3" large, "A7" rotorcraft, ...
        plan: the trajectory; plan time 0 is scenario time `start_s`.
        gnss_minus_baro_ft: GNSS height minus pressure altitude (QNH and geoid);
            a multiple of 25 ft is reported exactly. None: the aircraft has no GNSS
            height to report (its truth then uses 0).
        squawk_changes: (scenario time, new squawk) in time order, e.g. 7700.
        transponder_off_s: scenario time after which nothing is sent (switched off).
        radar_period_s: secondary radar sweep period: one DF4 + DF5 per sweep; None
            where no radar interrogates (only squitters are heard).
        tx_power_db: transmitter power relative to a 125 W light-aircraft unit.
    """

    icao: int
    callsign: str
    category: str
    plan: FlightPlan
    squawk: str = "2000"
    start_s: float = 0.0
    gnss_minus_baro_ft: float | None = 0.0
    squawk_changes: tuple[tuple[float, str], ...] = ()
    transponder_off_s: float | None = None
    radar_period_s: float | None = 12.0
    vr_baro: bool = True
    position_tc: int = 11
    tx_power_db: float = 0.0
    _changes_t: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_changes_t", tuple(t for t, _ in self.squawk_changes))

    @property
    def icao_hex(self) -> str:
        return f"{self.icao:06X}"

    def state(self, t: float) -> State:
        """Truth at scenario time t."""
        k = self.plan.kinematics(t - self.start_s)
        return State(
            t=t,
            lat=k.lat,
            lon=k.lon,
            alt_ft=k.alt_ft,
            gnss_alt_ft=k.alt_ft + (self.gnss_minus_baro_ft or 0.0),
            gs_kt=k.gs_kt,
            track_deg=k.track_deg % 360.0,
            vrate_fpm=k.vrate_fpm,
            on_ground=k.on_ground,
        )

    def squawk_at(self, t: float) -> str:
        i = bisect_right(self._changes_t, t)
        return self.squawk if i == 0 else self.squawk_changes[i - 1][1]

    def transmissions(
        self, t0: float, t1: float, rng: np.random.Generator
    ) -> Iterator[tuple[float, bytes]]:
        """(time, frame) for every reply sent in [t0, t1), in time order.

        Airborne: positions (even/odd alternating) and velocity every ~0.5 s,
        identification every ~5 s, TC 28 status every ~5 s (~0.8 s in an emergency),
        DF11 acquisition squitter every ~1 s, and a DF4 + DF5 per radar sweep. On the
        ground: surface positions instead of airborne position and velocity (every
        ~5 s when stopped). Nothing before `start_s` or after `transponder_off_s`.

        Each stream draws from its own generator spawned from `rng` (so `rng` is
        advanced); streams start at a random phase after `t0`, so windows that share
        t0 = 0 give the same frames where they overlap.
        """
        lo = max(t0, self.start_s)
        hi = t1 if self.transponder_off_s is None else min(t1, self.transponder_off_s)
        if hi <= lo:
            return
        # One generator per stream: how far one stream runs never shifts another's
        # draws, so a longer window only appends frames to a shorter one's.
        pos, vel, ident, allcall, status, radar = spawn_generators(rng, 6)
        out: list[tuple[float, bytes]] = []
        out += self._position_stream(lo, hi, pos)
        out += self._periodic(lo, hi, vel, VELOCITY_PERIOD_S, self._velocity)
        out += self._periodic(lo, hi, ident, IDENT_PERIOD_S, self._ident)
        out += self._periodic(lo, hi, allcall, ALLCALL_PERIOD_S, self._allcall)
        out += self._status_stream(lo, hi, status)
        if self.radar_period_s is not None:
            out += self._rollcalls(lo, hi, radar, self.radar_period_s)
        out.sort(key=lambda tm: tm[0])
        yield from out

    # --- streams ------------------------------------------------------------------

    @staticmethod
    def _next(t: float, period: float, rng: np.random.Generator) -> float:
        return t + period * float(rng.uniform(1.0 - JITTER, 1.0 + JITTER))

    def _periodic(
        self,
        lo: float,
        hi: float,
        rng: np.random.Generator,
        period: float,
        build: Callable[[float], bytes | None],
    ) -> list[tuple[float, bytes]]:
        out = []
        t = lo + period * float(rng.uniform(0.0, 1.0))
        while t < hi:
            msg = build(t)
            if msg is not None:
                out.append((t, msg))
            t = self._next(t, period, rng)
        return out

    def _position_stream(
        self, lo: float, hi: float, rng: np.random.Generator
    ) -> list[tuple[float, bytes]]:
        out = []
        odd = bool(rng.integers(0, 2))
        t = lo + POSITION_PERIOD_S * float(rng.uniform(0.0, 1.0))
        while t < hi:
            s = self.state(t)
            if s.on_ground:
                out.append(
                    (
                        t,
                        encode.surface_position(
                            self.icao, s.lat, s.lon, s.gs_kt, s.track_deg, odd=odd
                        ),
                    )
                )
                period = POSITION_PERIOD_S if s.gs_kt >= MOVING_KT else SURFACE_STILL_PERIOD_S
            else:
                ss = 1 if emergency_state(self.squawk_at(t)) else 0
                msg = encode.airborne_position(
                    self.icao,
                    s.lat,
                    s.lon,
                    s.alt_ft,
                    odd=odd,
                    tc=self.position_tc,
                    surveillance_status=ss,
                )
                out.append((t, msg))
                period = POSITION_PERIOD_S
            odd = not odd
            t = self._next(t, period, rng)
        return out

    def _status_stream(
        self, lo: float, hi: float, rng: np.random.Generator
    ) -> list[tuple[float, bytes]]:
        out = []
        t = lo + STATUS_PERIOD_S * float(rng.uniform(0.0, 1.0))
        while t < hi:
            sq = self.squawk_at(t)
            emergency = emergency_state(sq)
            ca = encode.CA_GROUND if self.state(t).on_ground else encode.CA_AIRBORNE
            out.append((t, encode.aircraft_status(self.icao, sq, emergency, ca=ca)))
            t = self._next(t, STATUS_EMERGENCY_PERIOD_S if emergency else STATUS_PERIOD_S, rng)
        return out

    def _rollcalls(
        self, lo: float, hi: float, rng: np.random.Generator, period: float
    ) -> list[tuple[float, bytes]]:
        out = []
        t = lo + period * float(rng.uniform(0.0, 1.0))
        while t < hi:
            s = self.state(t)
            sq = self.squawk_at(t)
            fs = (3 if s.on_ground else 2) if emergency_state(sq) else int(s.on_ground)
            out.append((t, encode.altitude_reply(self.icao, s.alt_ft, fs=fs)))
            if t + ROLLCALL_GAP_S < hi:
                out.append((t + ROLLCALL_GAP_S, encode.identity_reply(self.icao, sq, fs=fs)))
            # A rotating antenna: the sweep period barely varies.
            t += period * float(rng.uniform(0.99, 1.01))
        return out

    def _velocity(self, t: float) -> bytes | None:
        s = self.state(t)
        if s.on_ground:
            return None
        return encode.airborne_velocity(
            self.icao,
            s.gs_kt,
            s.track_deg,
            s.vrate_fpm,
            vr_baro=self.vr_baro,
            gnss_minus_baro_ft=self.gnss_minus_baro_ft,
        )

    def _ident(self, t: float) -> bytes:
        ca = encode.CA_GROUND if self.state(t).on_ground else encode.CA_AIRBORNE
        return encode.identification(self.icao, self.callsign, self.category, ca=ca)

    def _allcall(self, t: float) -> bytes:
        ca = encode.CA_GROUND if self.state(t).on_ground else encode.CA_AIRBORNE
        return encode.all_call_reply(self.icao, ca=ca)
