"""Per-track event detection: what a light aircraft *did*, in one line each.

Events (each at most once per episode, with the tags that locate it):
- `landing` / `takeoff`: ground contact after flight / flight after ground, tagged
  with the configured strip, the known aerodrome, or `away_from_aerodromes`;
- `low_pass`: down below LOW_PASS_AGL_FT at speed and up again without landing;
- `loiter`: circling (>= 360 deg of turn) within LOITER_RADIUS_KM for LOITER_MIN_S,
  away from known aerodromes (circuits there are routine);
- `lost_low`: the track ended airborne below LOST_LOW_AGL_FT, well inside radio
  coverage for that height and without fading first: a landing out of sight or a
  transponder switched off;
- `night_flight`: airborne with the sun below -6 deg at the aircraft;
- `country_mismatch`: registration-like callsign of another state than the address;
- `unlocated_contact`: heard for a while (Mode S only) but never located.

The kinds are agent.schema.EventKind members, declared there with the pipeline's own
(`track_start`, `track_end`, `emergency_squawk`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise

from agent.geo import haversine_km, radio_horizon_km
from agent.intel.aerodromes import Aerodromes
from agent.intel.classify import classify_callsign, country_mismatch
from agent.intel.geofence import Geofence, fences_at
from agent.intel.sun import is_night
from agent.schema import EventKind
from agent.track import Aircraft

# Ground contact: this low and this slow (ADS-B from light aircraft seldom switches
# to surface messages, so height and speed decide).
GROUND_AGL_FT = 150.0
GROUND_SPEED_KT = 70.0
# Flight: above this height, or faster than GROUND_SPEED_KT.
AIRBORNE_AGL_FT = 300.0
LOW_PASS_AGL_FT = 500.0
LOW_PASS_MIN_SPEED_KT = 30.0
LOW_PASS_CLIMB_FT = 300.0  # back up this much above the lowest point
LOST_LOW_AGL_FT = 1500.0
# "Well inside coverage": closer than this share of the radio horizon for that height,
# and still heard at this share of its usual message rate in its last RATE_WINDOW_S:
# an aircraft fading out at the edge of coverage is heard less and less before it is
# lost, a transponder switched off goes from full rate to nothing.
COVERAGE_SHARE = 0.6
RATE_WINDOW_S = 10.0
ABRUPT_RATE_SHARE = 0.5
LOITER_RADIUS_KM = 3.0
LOITER_MIN_S = 180.0
LOITER_CHECK_S = 5.0  # the window is re-examined this often, not on every position
UNLOCATED_MIN_MESSAGES = 20
UNLOCATED_MIN_S = 30.0
# Height of the uncertainty above which a height is too vague for ground decisions.
_TRUSTED_UNCERTAINTY_FT = 200.0
_M_PER_FT = 0.3048


def _fading(heard: deque[tuple[float, int]]) -> bool:
    """True when the last RATE_WINDOW_S brought fewer messages than ABRUPT_RATE_SHARE of
    the best such window in the track's recent history."""
    if len(heard) < 2 or heard[-1][0] - heard[0][0] < 2 * RATE_WINDOW_S:
        return False
    samples = list(heard)
    rates = []
    j = 0
    for t, n in samples:
        while samples[j][0] < t - RATE_WINDOW_S:
            j += 1
        if t - samples[0][0] >= RATE_WINDOW_S:
            rates.append((n - samples[j][1]) / max(t - samples[j][0], 1e-6))
    if not rates:
        return False
    return rates[-1] < ABRUPT_RATE_SHARE * max(rates)


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    ts: float
    tags: tuple[str, ...] = ()


@dataclass(slots=True)
class _State:
    on_ground: bool | None = None
    was_airborne: bool = False
    low_min_agl: float | None = None  # lowest point of a pass in progress
    prev_agl: float | None = None
    path: deque[tuple[float, float, float, float | None]] = field(
        default_factory=lambda: deque(maxlen=2000)
    )
    loitering: bool = False
    next_loiter_check: float = 0.0
    once: set[str] = field(default_factory=set)
    heard: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=600))


class TrackAnalyst:
    """Turns aircraft updates into events. Not thread-safe (pipeline thread only)."""

    def __init__(
        self,
        site: tuple[float, float] | None,
        antenna_m: float = 10.0,
        fences: list[Geofence] | None = None,
        aerodromes: Aerodromes | None = None,
    ):
        self.site = site
        self.antenna_m = antenna_m
        self.fences = fences or []
        self.aerodromes = aerodromes
        self._tracks: dict[str, _State] = {}

    def place_tags(self, lat: float | None, lon: float | None) -> tuple[str, ...]:
        """Where a point is: configured areas, the nearest known aerodrome, or neither."""
        if lat is None or lon is None:
            return ()
        tags = [f"in:{f.name}" for f in fences_at(self.fences, lat, lon)]
        if self.aerodromes is not None:
            near = self.aerodromes.nearest(lat, lon)
            tags.append(f"aerodrome:{near.code}" if near else "away_from_aerodromes")
        return tuple(tags)

    def update(self, ac: Aircraft, now: float, new_position: bool) -> list[Event]:
        st = self._tracks.setdefault(ac.icao, _State())
        st.heard.append((now, ac.messages))
        events: list[Event] = []
        self._identity(ac, st, now, events)
        if not new_position or ac.lat is None or ac.lon is None:
            return events
        agl = ac.height.agl_ft if ac.height is not None else None
        trusted = ac.height is not None and ac.height.uncertainty_ft <= _TRUSTED_UNCERTAINTY_FT
        here = self.place_tags(ac.lat, ac.lon)
        ground = self._on_ground(ac, agl if trusted else None)
        if ground is not None:
            if ground and st.on_ground is False and st.was_airborne:
                events.append(Event(EventKind.LANDING, now, here))
            elif not ground and st.on_ground is True:
                events.append(Event(EventKind.TAKEOFF, now, here))
            st.on_ground = ground
            if not ground:
                st.was_airborne = True
        if ground:
            st.low_min_agl = None  # it landed: what came before was an approach
        elif trusted and agl is not None:
            self._low_pass(ac, st, agl, now, here, events)
        if "night" not in st.once and not ground and is_night(ac.lat, ac.lon, now):
            st.once.add("night")
            events.append(Event(EventKind.NIGHT_FLIGHT, now, here))
        self._loiter(ac, st, now, here, events)
        return events

    def _identity(self, ac: Aircraft, st: _State, now: float, events: list[Event]) -> None:
        if "mismatch" not in st.once and ac.callsign:
            cs = classify_callsign(ac.callsign)
            if country_mismatch(cs, ac.country):
                st.once.add("mismatch")
                tags = (f"callsign_country:{cs.country}", f"address_country:{ac.country}")  # type: ignore[union-attr]
                events.append(Event(EventKind.COUNTRY_MISMATCH, now, tags))

    @staticmethod
    def _on_ground(ac: Aircraft, agl: float | None) -> bool | None:
        if ac.on_ground is True and (ac.gs_kt is None or ac.gs_kt < GROUND_SPEED_KT):
            return True
        if agl is None:
            return None if ac.on_ground is None else ac.on_ground
        slow = ac.gs_kt is not None and ac.gs_kt < GROUND_SPEED_KT
        if agl < GROUND_AGL_FT and slow:
            return True
        if agl > AIRBORNE_AGL_FT or not slow:
            return False
        return None  # in between: keep the previous state

    def _low_pass(
        self,
        ac: Aircraft,
        st: _State,
        agl: float,
        now: float,
        here: tuple[str, ...],
        events: list[Event],
    ) -> None:
        fast = ac.gs_kt is not None and ac.gs_kt >= LOW_PASS_MIN_SPEED_KT
        came_down = st.low_min_agl is not None or (
            st.prev_agl is not None and st.prev_agl >= LOW_PASS_AGL_FT
        )
        st.prev_agl = agl
        if agl < LOW_PASS_AGL_FT and fast and came_down:  # a climb-out is not a pass
            st.low_min_agl = agl if st.low_min_agl is None else min(st.low_min_agl, agl)
        elif st.low_min_agl is not None and agl >= st.low_min_agl + LOW_PASS_CLIMB_FT:
            if st.on_ground is not True:
                tags = (*here, f"min_agl_ft:{round(st.low_min_agl)}")
                events.append(Event(EventKind.LOW_PASS, now, tags))
            st.low_min_agl = None

    def _loiter(
        self, ac: Aircraft, st: _State, now: float, here: tuple[str, ...], events: list[Event]
    ) -> None:
        """Circling: over the last LOITER_MIN_S, every point within LOITER_RADIUS_KM of
        their centre and at least a full turn of heading change."""
        st.path.append((now, ac.lat, ac.lon, ac.track_deg))  # type: ignore[arg-type]
        while st.path and now - st.path[0][0] > LOITER_MIN_S:
            st.path.popleft()
        span = now - st.path[0][0]
        if span < 0.95 * LOITER_MIN_S or now < st.next_loiter_check:
            return
        st.next_loiter_check = now + LOITER_CHECK_S
        lat0 = sum(p[1] for p in st.path) / len(st.path)
        lon0 = sum(p[2] for p in st.path) / len(st.path)
        within = all(haversine_km(lat0, lon0, p[1], p[2]) <= LOITER_RADIUS_KM for p in st.path)
        tracks = [p[3] for p in st.path if p[3] is not None]
        turn = sum((b - a + 540.0) % 360.0 - 180.0 for a, b in pairwise(tracks))
        circling = within and abs(turn) >= 360.0
        # Circuits and holds at a known aerodrome are routine, not loitering.
        at_aerodrome = any(t.startswith("aerodrome:") for t in here)
        if circling and not st.loitering and not st.on_ground and not at_aerodrome:
            events.append(Event(EventKind.LOITER, now, (*here, f"radius_km:{LOITER_RADIUS_KM:g}")))
        st.loitering = circling

    def unlocated(self, ac: Aircraft, now: float) -> Event | None:
        """Once per track: a contact heard for a while that never gave a position."""
        st = self._tracks.setdefault(ac.icao, _State())
        if (
            "unlocated" in st.once
            or ac.lat is not None
            or ac.messages < UNLOCATED_MIN_MESSAGES
            or now - ac.first_seen < UNLOCATED_MIN_S
        ):
            return None
        st.once.add("unlocated")
        return Event(EventKind.UNLOCATED_CONTACT, now, ("mode_s_only",))

    def end(self, ac: Aircraft, now: float) -> list[Event]:
        """Events at the end of a track (silence), then forget it."""
        st = self._tracks.pop(ac.icao, None)
        if st is None or ac.lat is None or ac.lon is None or ac.height is None:
            return []
        agl = ac.height.agl_ft
        if st.on_ground is not False or agl >= LOST_LOW_AGL_FT:
            return []
        if self.site is not None:
            dist = haversine_km(self.site[0], self.site[1], ac.lat, ac.lon)
            if dist > COVERAGE_SHARE * radio_horizon_km(self.antenna_m, agl * _M_PER_FT):
                return []  # it may simply have flown out of range
        if _fading(st.heard):
            return []  # heard less and less before the end: the edge of coverage
        tags = (*self.place_tags(ac.lat, ac.lon), f"last_agl_ft:{round(agl)}")
        return [Event(EventKind.LOST_LOW, now, tags)]
