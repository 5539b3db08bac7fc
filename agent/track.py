"""Per-aircraft state built from decoded frames.

Time comes from the frames (`rx_time`), never from the wall clock, so a replay ages
tracks exactly as the live feed did and tests need no clock patching. Live sources
anchor `rx_time` on the wall clock, so a clock stepped back (NTP at boot, an operator)
steps frame time back too: see CLOCK_STEP_BACK_S.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from agent.country import country_of
from agent.geo import haversine_km
from agent.schema import PositionSource

if TYPE_CHECKING:
    from agent.intel.height import Height

# Silence after which an aircraft is forgotten; dump1090 uses 300 s for display,
# but a low GA track lost for a minute is worth reporting as ended.
DEFAULT_EXPIRE_S = 60.0
# The most aircraft held: a receiver hears at most a few thousand, so only a feed of
# endless distinct addresses (bad data, an attack) reaches it. Beyond it the least
# recently heard is ended as if it had expired (counted as tracks_evicted).
DEFAULT_MAX_AIRCRAFT = 20_000
# Time going back by more than this starts a new time base: every aircraft's last_seen
# moves back with it (ages kept), instead of expiry waiting for time to catch up with
# the old base and ending every track at once. Smaller steps are ordinary disorder
# between sources (a network feed behind a local one) and only delay expiry that much.
CLOCK_STEP_BACK_S = 10.0

log = logging.getLogger(__name__)

# ADS-B type codes 1-4 select the emitter category set D, C, B, A.
_CATEGORY_SETS = {4: "A", 3: "B", 2: "C", 1: "D"}
_GNSS_POSITION_TCS = frozenset((20, 21, 22))
_EMERGENCY_SQUAWKS = frozenset(("7500", "7600", "7700"))
# Comm-B registers of Enhanced Surveillance (selected altitude, track and turn, heading
# and speed): radars ask for them only from transponders that carry them, which
# Europe requires of IFR aircraft over 5,700 kg or faster than 250 kt, not of light ones.
_EHS_REGISTERS = frozenset(("4,0", "5,0", "6,0"))


@dataclass(slots=True)
class Aircraft:
    """What is known of one 24-bit address; None means not (yet) received."""

    icao: str
    first_seen: float
    last_seen: float
    country: str | None = None
    messages: int = 0
    signal_dbfs: float | None = None
    lat: float | None = None
    lon: float | None = None
    position_time: float | None = None
    position_source: PositionSource | None = None
    alt_baro_ft: int | None = None
    alt_gnss_ft: int | None = None
    gs_kt: float | None = None
    track_deg: float | None = None
    vrate_fpm: int | None = None
    callsign: str | None = None
    squawk: str | None = None
    category: str | None = None
    on_ground: bool | None = None
    geo_minus_baro_ft: int | None = None
    adsb: bool = False  # an extended squitter (DF17/18) was heard: not Mode S-only
    ehs: bool = False  # answered an Enhanced Surveillance register (a large aircraft)
    height: Height | None = None  # above ground, set by the pipeline's height model

    @property
    def track_id(self) -> str:
        """Stable id of this sighting: the address plus when it was first heard."""
        return f"{self.icao}-{int(self.first_seen)}"

    @property
    def emergency(self) -> bool:
        return self.squawk in _EMERGENCY_SQUAWKS

    def height_above_ft(self, elevation_ft: float) -> float | None:
        """Height above ground: the height model's figure, else pressure (or GNSS)
        altitude above `elevation_ft`, the receiver's ground when nothing better is known."""
        if self.height is not None:
            return self.height.agl_ft
        alt = self.alt_baro_ft if self.alt_baro_ft is not None else self.alt_gnss_ft
        return None if alt is None else alt - elevation_ft

    def distance_km(self, point: tuple[float, float] | None) -> float | None:
        """Great-circle distance from `point` (the receiver), if both are known."""
        if point is None or self.lat is None or self.lon is None:
            return None
        return haversine_km(point[0], point[1], self.lat, self.lon)


class Update(NamedTuple):
    """What one frame changed, so later stages need not diff aircraft state (a tuple:
    one is made per frame, and a frozen dataclass costs three times as much to make)."""

    aircraft: Aircraft
    new_aircraft: bool
    new_position: bool
    squawk_changed: bool


class Tracker:
    """Holds every aircraft heard recently. Not thread-safe."""

    def __init__(
        self, expire_s: float = DEFAULT_EXPIRE_S, max_aircraft: int = DEFAULT_MAX_AIRCRAFT
    ):
        if expire_s <= 0:
            raise ValueError("expire_s must be > 0")
        if max_aircraft < 1:
            raise ValueError("max_aircraft must be >= 1")
        self.expire_s = expire_s
        self.max_aircraft = max_aircraft
        self.aircraft: dict[str, Aircraft] = {}
        self.counts: Counter[str] = Counter()
        # The addresses of self.aircraft, least recently heard first (self.aircraft
        # keeps first-heard order, which is the order expiry reports them in).
        self._heard: OrderedDict[str, None] = OrderedDict()
        # Evicted for room, ended by the next expire(); heard again before that, kept.
        self._evicted: dict[str, Aircraft] = {}
        self._latest: float | None = None  # the latest time seen, in the current base

    def update(self, fields: dict[str, Any], rx_time: float, signal_dbfs: float | None) -> Update:
        """Merge one decoded frame into its aircraft."""
        latest = self._latest
        if latest is None or rx_time > latest:
            self._latest = rx_time  # time going on: _observe_time's common case, inline
        elif latest - rx_time > CLOCK_STEP_BACK_S:
            self._observe_time(rx_time)
        icao = fields["icao"].upper()
        ac = self.aircraft.get(icao)
        new = ac is None
        if ac is None:
            ac = self._evicted.pop(icao, None)
            if ac is not None:  # evicted moments ago: the same track goes on
                new = False
                self.aircraft[icao] = ac
            else:
                country = country_of(int(icao, 16))
                ac = Aircraft(icao, rx_time, rx_time, country.iso2 if country else None)
                self.aircraft[icao] = ac
                self.counts["tracks_started"] += 1
            self._heard[icao] = None
            if len(self._heard) > self.max_aircraft:
                self._evict()
        else:
            self._heard.move_to_end(icao)
        if rx_time > ac.last_seen:
            ac.last_seen = rx_time
        ac.messages += 1
        if signal_dbfs is not None:
            ac.signal_dbfs = signal_dbfs
        old_squawk = ac.squawk
        new_position = _merge(ac, fields, rx_time)
        return Update(ac, new, new_position, ac.squawk != old_squawk)

    def expire(self, now: float) -> list[Aircraft]:
        """Remove and return aircraft silent for longer than `expire_s`, and those
        evicted for room since the last call (the caller ends them all alike)."""
        self._observe_time(now)
        gone = [ac for ac in self.aircraft.values() if now - ac.last_seen > self.expire_s]
        for ac in gone:
            del self.aircraft[ac.icao]
            del self._heard[ac.icao]
        self.counts["tracks_expired"] += len(gone)
        if self._evicted:
            gone = [*self._evicted.values(), *gone]
            self.counts["tracks_evicted"] += len(self._evicted)
            self._evicted.clear()
        return gone

    def _evict(self) -> None:
        """Make room: the least recently heard aircraft waits for expire() to end it."""
        icao, _ = self._heard.popitem(last=False)
        self._evicted[icao] = self.aircraft.pop(icao)

    def _observe_time(self, t: float) -> None:
        """Follow the time base; a step back beyond CLOCK_STEP_BACK_S moves every
        aircraft's last_seen back by the step, so that ages (and expiry) go on."""
        latest = self._latest
        if latest is None or t > latest:
            self._latest = t
            return
        step = latest - t
        if step <= CLOCK_STEP_BACK_S:
            return
        for ac in (*self.aircraft.values(), *self._evicted.values()):
            ac.last_seen -= step
        self._latest = t
        self.counts["clock_steps_back"] += 1
        if self.counts["clock_steps_back"] == 1:
            log.warning(
                "frame time went back %.1f s (clock stepped?): track ages moved back with it"
                " (further steps are counted in track.clock_steps_back)",
                step,
            )


def _merge(ac: Aircraft, f: dict[str, Any], t: float) -> bool:
    """Copy the fields a frame carries into the aircraft; True if it moved."""
    get = f.get  # once: this runs for every frame
    tc = get("typecode")
    if tc is not None:
        ac.adsb = True
        if tc in _CATEGORY_SETS and get("category") is not None:
            ac.category = f"{_CATEGORY_SETS[tc]}{f['category']}"
        if 5 <= tc <= 8:
            ac.on_ground = True
        elif 9 <= tc <= 22:
            ac.on_ground = False
    if get("bds") in _EHS_REGISTERS:
        ac.ehs = True
    alt = get("altitude")
    if alt is not None:
        if tc in _GNSS_POSITION_TCS:
            ac.alt_gnss_ft = alt
        else:
            ac.alt_baro_ft = alt
            if ac.geo_minus_baro_ft is not None and tc is not None:
                ac.alt_gnss_ft = alt + ac.geo_minus_baro_ft
    geo_minus_baro = get("geo_minus_baro")
    if geo_minus_baro is not None:
        ac.geo_minus_baro_ft = geo_minus_baro
        if ac.alt_baro_ft is not None:
            ac.alt_gnss_ft = ac.alt_baro_ft + geo_minus_baro
    groundspeed = get("groundspeed")
    if groundspeed is not None:
        ac.gs_kt = float(groundspeed)
    track = get("track")
    if track is not None:
        ac.track_deg = round(float(track), 1)
    vertical_rate = get("vertical_rate")
    if vertical_rate is not None:
        ac.vrate_fpm = vertical_rate
    callsign = get("callsign")
    if callsign:
        ac.callsign = callsign.strip("_ ") or None
    squawk = get("squawk")
    if squawk:
        ac.squawk = squawk
    fs = get("flight_status")
    if fs is not None:
        if fs == 1 or fs == 3:
            ac.on_ground = True
        elif fs == 0 or fs == 2:
            ac.on_ground = False
    lat, lon = get("latitude"), get("longitude")
    if lat is None or lon is None:
        return False
    ac.lat, ac.lon, ac.position_time = round(lat, 6), round(lon, 6), t
    ac.position_source = get("position_source", "cpr_global")
    return True
