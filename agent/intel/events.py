"""Per-track event detection: what a light aircraft *did*, in one line each.

Events (each at most once per episode, with the tags that locate it):
- `landing` / `takeoff`: ground contact after flight / flight after ground, tagged
  with the configured strip, the known aerodrome, or `away_from_aerodromes`;
- `low_pass`: below LOW_PASS_AGL_FT at speed and up again without landing, either
  come down from above or first heard low (out of terrain shadow) and flying low for
  LOW_LEVEL_MIN_S: flying low to stay off radar is the profile;
- `loiter`: circling (>= 360 deg of turn) within LOITER_RADIUS_KM for LOITER_MIN_S,
  away from known aerodromes (circuits there are routine);
- `lost_low`: the track ended airborne below LOST_LOW_AGL_FT, inside radio coverage
  for that height, named by how it ended: `likely:landing` when last heard descending
  below FINAL_AGL_FT (it fades because it descends: the fading and 60 % coverage rules
  that keep aircraft leaving coverage quiet do not apply), else
  `likely:transponder_off` when well inside coverage and not fading first;
- `night_flight`: airborne with the sun below -6 deg at the aircraft;
- `country_mismatch`: registration-like callsign of another state than the address;
- `unlocated_contact`: a Mode S-only contact (no extended squitter heard) heard a
  handful of times (UNLOCATED_MIN_MESSAGES over UNLOCATED_MIN_S), never located.

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
# Last heard below this and descending: an approach (to a strip, an aerodrome or a
# field), so the loss is most likely the landing itself, below the radio horizon.
FINAL_AGL_FT = 500.0
DESCENDING_FPM = -200  # vertical rate at or below this is a descent
DESCENT_WINDOW_S = 30.0  # or this much height lost over the last DESCENT_WINDOW_S...
DESCENT_MIN_FT = 100.0  # ...of at least this many feet
# First heard already low and fast: a low pass once it has flown low this long (a
# climb-out first heard low leaves the band within seconds).
LOW_LEVEL_MIN_S = 30.0
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
# A Mode S-only light aircraft is interrogated a few times per radar sweep (every
# 4-12 s): a handful of replies over ten seconds is already a contact worth reporting.
UNLOCATED_MIN_MESSAGES = 5
UNLOCATED_MIN_S = 10.0
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


def _descending(ac: Aircraft, st: _State) -> bool:
    """Last heard going down: by its vertical rate, or by the heights of its last
    DESCENT_WINDOW_S (the rate is missing or stale on some light transponders)."""
    if ac.vrate_fpm is not None and ac.vrate_fpm <= DESCENDING_FPM:
        return True
    if not st.heights:
        return False
    t_last, last = st.heights[-1]
    window = [h for t, h in st.heights if t >= t_last - DESCENT_WINDOW_S]
    return max(window) - last >= DESCENT_MIN_FT


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
    # First heard low and fast: since when, and the last time it still was.
    low_level_since: float | None = None
    low_level_last: float = 0.0
    prev_agl: float | None = None
    heights: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=200))
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
        first_height = not st.heights  # first heard: nothing of its past is known
        if agl is not None:
            st.heights.append((now, agl))
        if ground:
            st.low_min_agl = None  # it landed: what came before was an approach
            st.low_level_since = None
        elif trusted and agl is not None:
            self._low_pass(ac, st, agl, now, here, events, first_height)
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
        first_height: bool,
    ) -> None:
        fast = ac.gs_kt is not None and ac.gs_kt >= LOW_PASS_MIN_SPEED_KT
        low = agl < LOW_PASS_AGL_FT and fast
        if low and first_height:
            st.low_level_since = now  # first heard already low: out of terrain shadow
        came_down = st.low_min_agl is not None or (
            st.prev_agl is not None and st.prev_agl >= LOW_PASS_AGL_FT
        )
        st.prev_agl = agl
        if low and (came_down or st.low_level_since is not None):
            st.low_min_agl = agl if st.low_min_agl is None else min(st.low_min_agl, agl)
            if st.low_level_since is not None:
                st.low_level_last = now
        elif st.low_min_agl is not None and agl >= st.low_min_agl + LOW_PASS_CLIMB_FT:
            # A climb-out first heard low is not a pass; low-level flight is.
            sustained = (
                st.low_level_since is None
                or st.low_level_last - st.low_level_since >= LOW_LEVEL_MIN_S
            )
            if st.on_ground is not True and sustained:
                tags = (*here, f"min_agl_ft:{round(st.low_min_agl)}")
                events.append(Event(EventKind.LOW_PASS, now, tags))
            st.low_min_agl = None
            st.low_level_since = None

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
            or ac.adsb
            or ac.messages < UNLOCATED_MIN_MESSAGES
            or now - ac.first_seen < UNLOCATED_MIN_S
        ):
            return None
        st.once.add("unlocated")
        return Event(EventKind.UNLOCATED_CONTACT, now, ("mode_s_only",))

    def forget_unlocated(self, icao: str) -> None:
        """The contact was not reported after all: it may be on its next reply."""
        st = self._tracks.get(icao)
        if st is not None:
            st.once.discard("unlocated")

    def end(self, ac: Aircraft, now: float) -> list[Event]:
        """Events at the end of a track (silence), then forget it."""
        st = self._tracks.pop(ac.icao, None)
        if st is None or ac.lat is None or ac.lon is None or ac.height is None:
            return []
        agl = ac.height.agl_ft
        if st.on_ground is not False or agl >= LOST_LOW_AGL_FT:
            return []
        # Descending on final: it fades because it descends, not because it leaves.
        final = agl < FINAL_AGL_FT and _descending(ac, st)
        if self.site is not None:
            dist = haversine_km(self.site[0], self.site[1], ac.lat, ac.lon)
            horizon = radio_horizon_km(self.antenna_m, agl * _M_PER_FT)
            if dist > (horizon if final else COVERAGE_SHARE * horizon):
                return []  # it may simply have flown out of range
        if not final and _fading(st.heard):
            return []  # heard less and less before the end: the edge of coverage
        likely = "likely:landing" if final else "likely:transponder_off"
        tags = (*self.place_tags(ac.lat, ac.lon), f"last_agl_ft:{round(agl)}", likely)
        return [Event(EventKind.LOST_LOW, now, tags)]
