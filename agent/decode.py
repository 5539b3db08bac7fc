"""Frame -> decoded fields, through pyModeS 3 (the only module that imports it).

pyModeS's `PipeDecoder` needs three mutually consistent CPR pairs before it releases a
first position (about 5 s per aircraft on real data; never, for an aircraft heard only
briefly). We release a first fix sooner, still never from a single unchecked frame:
- with a known receiver position, an airborne CPR frame decodes unambiguously against
  it (valid within 180 NM); the fix is held until the next frame of the other parity
  lands where the first one predicts;
- without one, an even/odd pair decodes globally; the fix is held until the next pair
  agrees with it.
After that, frames decode locally against the aircraft's own last position, each
checked against the speed it implies.

`position_source` says how each position was solved: `cpr_global` only when the frame
was paired with one of the other parity (pyModeS's even/odd resolution, or ours);
`cpr_local` when one frame was decoded against a reference (the receiver, or the
aircraft's previous position: pyModeS does this for most frames once a track is
established, and counts them in its `local_positions` statistic).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, NamedTuple

from pyModeS import PipeDecoder
from pyModeS.position import airborne_position_pair, airborne_position_with_ref

from agent.frame import Frame
from agent.geo import haversine_km

# Local CPR decoding is unambiguous only within 180 NM (333 km) of the reference;
# stay below it so a far aircraft cannot alias onto a near point.
MAX_LOCAL_RANGE_KM = 300.0
# Two consecutive positions of one aircraft may be at most this fast apart
# (generous for GA and airliners, far below what a CPR alias produces).
MAX_SPEED_KT = 1000.0
# Absolute slack for the consistency check: CPR quantisation and timing jitter.
POSITION_SLACK_KM = 1.0
# An even/odd pair further apart than this may straddle a latitude zone (DO-260B).
PAIR_WINDOW_S = 10.0
# How long our own last position stays a valid local reference for that aircraft.
OWN_REFERENCE_TTL_S = 30.0

_AIRBORNE_POSITION_TCS = frozenset(range(9, 19)) | frozenset(range(20, 23))
_SURFACE_POSITION_TCS = frozenset(range(5, 9))
_KM_PER_KT_S = 1.852 / 3600.0


@dataclass(slots=True)
class _LocalFix:
    lat: float
    lon: float
    t: float
    confirmed: bool
    cpr_format: int = -1


class _Cpr(NamedTuple):
    """The raw CPR fields of one airborne position frame (a tuple: one is made per
    position frame, and a frozen dataclass costs three times as much to make)."""

    fmt: int
    lat: int
    lon: int
    t: float


def _plausible_step(prev: _LocalFix, lat: float, lon: float, t: float) -> bool:
    dt = abs(t - prev.t)
    limit = dt * MAX_SPEED_KT * _KM_PER_KT_S + POSITION_SLACK_KM
    return haversine_km(prev.lat, prev.lon, lat, lon) <= limit


class Decoder:
    """Decodes verified frames; adds early, checked first positions.

    Not thread-safe (pyModeS's PipeDecoder is not): one decoder per pipeline.
    """

    def __init__(self, receiver: tuple[float, float] | None = None):
        self.receiver = receiver
        self._pipe = PipeDecoder(surface_ref=receiver) if receiver else PipeDecoder()
        self._fixes: dict[str, _LocalFix] = {}
        self._last_cpr: dict[str, dict[int, _Cpr]] = {}
        # pyModeS's count of positions it decoded against a previous position, as last
        # read: a step on a frame that brought a position means that frame was local.
        self._pipe_local = 0
        self.counts: Counter[str] = Counter()

    def decode(self, frame: Frame) -> dict[str, Any] | None:
        """Decoded fields of one frame (a private copy), or None if pyModeS rejects it."""
        result = self._pipe.decode(frame.hex, timestamp=frame.rx_time)
        if "error" in result:
            self.counts["decode_error"] += 1
            return None
        fields = dict(result)  # pyModeS retro-fills dicts it returned earlier
        tc = fields.get("typecode")
        if (
            tc in _AIRBORNE_POSITION_TCS
            and fields.get("cpr_format") in (0, 1)
            and fields.get("cpr_lat") is not None
        ):
            self._position(fields, frame.rx_time)
        elif tc in _SURFACE_POSITION_TCS and fields.get("latitude") is not None:
            fields["position_source"] = "cpr_surface"
        self.counts["decoded"] += 1
        return fields

    def _position(self, fields: dict[str, Any], t: float) -> None:
        icao, fmt = fields["icao"], fields["cpr_format"]
        frame = _Cpr(fmt, fields["cpr_lat"], fields["cpr_lon"], t)
        try:
            lat, lon = fields.get("latitude"), fields.get("longitude")
            if lat is not None and lon is not None:
                self._fixes[icao] = _LocalFix(lat, lon, t, True, fmt)
                fields["position_source"] = self._pipe_source()
                return
            fix = self._fixes.get(icao)
            if fix is not None and t - fix.t > OWN_REFERENCE_TTL_S:
                fix = None
            if fix is not None and fix.confirmed:
                lat, lon = airborne_position_with_ref(fmt, frame.lat, frame.lon, fix.lat, fix.lon)
                if _plausible_step(fix, lat, lon, t):
                    self._accept(icao, fields, lat, lon, frame, "cpr_local")
                    return
                self.counts["local_rejected"] += 1
                fix = None  # start over from an independent candidate
            candidate = self._candidate(icao, frame)
            if candidate is None:
                return
            lat, lon, source = candidate
            # A receiver-referenced fix of an aircraft beyond 180 NM aliases the same way
            # in two frames of one parity, differently across parities: only the other
            # parity confirms it. Pair fixes use both parities already.
            confirms = (
                fix is not None
                and (source == "cpr_global" or fix.cpr_format != fmt)
                and _plausible_step(fix, lat, lon, t)
            )
            if confirms:
                self._accept(icao, fields, lat, lon, frame, source)
            else:
                self._fixes[icao] = _LocalFix(lat, lon, t, False, fmt)
                self.counts["first_fix_held"] += 1
        finally:
            last = self._last_cpr.get(icao)
            if last is None:
                last = self._last_cpr[icao] = {}
            last[fmt] = frame

    def _pipe_source(self) -> str:
        """How pyModeS solved the position it just returned: from its previous position
        (its local-position count stepped) or from an even/odd pair."""
        local = self._pipe.stats["local_positions"]
        stepped, self._pipe_local = local != self._pipe_local, local
        return "cpr_local" if stepped else "cpr_global"

    def _candidate(self, icao: str, frame: _Cpr) -> tuple[float, float, str] | None:
        """A position for `frame` found without the aircraft's own history: against the
        receiver when its position is known, else from the last frame of the other
        parity (a global even/odd decode)."""
        if self.receiver is not None:
            lat, lon = airborne_position_with_ref(frame.fmt, frame.lat, frame.lon, *self.receiver)
            if haversine_km(*self.receiver, lat, lon) > MAX_LOCAL_RANGE_KM:
                self.counts["local_out_of_range"] += 1
                return None
            return lat, lon, "cpr_local"
        other = self._last_cpr.get(icao, {}).get(1 - frame.fmt)
        if other is None or frame.t - other.t > PAIR_WINDOW_S:
            return None
        even, odd = (frame, other) if frame.fmt == 0 else (other, frame)
        pos = airborne_position_pair(
            even.lat, even.lon, odd.lat, odd.lon, even_is_newer=frame.fmt == 0
        )
        if pos is None:
            self.counts["pair_zone_mismatch"] += 1
            return None
        return pos[0], pos[1], "cpr_global"

    def _accept(
        self, icao: str, fields: dict[str, Any], lat: float, lon: float, frame: _Cpr, source: str
    ) -> None:
        self._fixes[icao] = _LocalFix(lat, lon, frame.t, True, frame.fmt)
        fields["latitude"], fields["longitude"] = lat, lon
        fields["position_source"] = source
        self.counts["positions_" + source] += 1

    def forget(self, icao: str) -> None:
        """Drop local position state of an expired aircraft."""
        self._fixes.pop(icao, None)
        self._last_cpr.pop(icao, None)
