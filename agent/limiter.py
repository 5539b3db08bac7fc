"""Per-aircraft, change-based rate limit on published positions (metered links).

The default policy is FlightAware's (dump1090-fa's faup output, see shared/REFERENCE.md):
send at once when callsign, squawk, emergency or air/ground changes; on the ground every
second; below 10,000 ft every 5 s if something changed, else every 10 s; above, 10 s /
30 s. "Changed" compares with what was last *sent*: altitude by 50 ft, track by 2 deg,
speed by 25 kt, vertical rate by 500 fpm. On top of that, a position more than
`deviation_m` from where the last sent position, speed and track put the aircraft goes
at once, which bounds how far a consumer's redrawn track can stray. A straight, steady
track needs few points for a consumer to redraw it; a turn or a climb gets more.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from agent.track import Aircraft


@dataclass(frozen=True, slots=True)
class LimiterPolicy:
    ground_interval_s: float = 1.0
    low_ceiling_ft: float = 10_000.0
    low_changed_s: float = 5.0
    low_steady_s: float = 10.0
    high_changed_s: float = 10.0
    high_steady_s: float = 30.0
    altitude_ft: float = 50.0
    track_deg: float = 2.0
    speed_kt: float = 25.0
    vrate_fpm: float = 500.0
    # Send at once when the aircraft is this far from where the last sent position,
    # speed and track put it (a turn, or a track change we heard no velocity for).
    deviation_m: float = 100.0


@dataclass(slots=True)
class _Sent:
    t: float
    lat: float | None
    lon: float | None
    alt: int | None
    track: float | None
    gs: float | None
    vrate: int | None
    identity: tuple[object, ...]


def _deviation_m(last: _Sent, ac: Aircraft, elapsed: float) -> float:
    """Distance between the aircraft and the dead-reckoned last sent state (flat Earth:
    the distances involved are a few km at most)."""
    if None in (last.lat, last.lon, last.gs, last.track, ac.lat, ac.lon):
        return 0.0
    dist_m = last.gs * 1852.0 / 3600.0 * elapsed  # type: ignore[operator]
    north = dist_m * math.cos(math.radians(last.track))  # type: ignore[arg-type]
    east = dist_m * math.sin(math.radians(last.track))  # type: ignore[arg-type]
    dn = (ac.lat - last.lat) * 111_195.0 - north  # type: ignore[operator]
    de = (ac.lon - last.lon) * 111_195.0 * math.cos(math.radians(ac.lat)) - east  # type: ignore[operator]
    return math.hypot(dn, de)


def _angle_diff(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def _moved(a: float | None, b: float | None, threshold: float) -> bool:
    return a is not None and b is not None and abs(a - b) >= threshold


class PositionLimiter:
    """Decides, per position update, whether it is worth publishing. Not thread-safe."""

    def __init__(self, policy: LimiterPolicy | None = None):
        self.policy = policy or LimiterPolicy()
        self._sent: dict[str, _Sent] = {}
        self.counts: Counter[str] = Counter()

    def should_send(self, ac: Aircraft, now: float) -> bool:
        p = self.policy
        identity = (ac.callsign, ac.squawk, ac.emergency, ac.on_ground)
        last = self._sent.get(ac.icao)
        if last is None or last.identity != identity:
            return self._send(ac, now, identity)
        elapsed = now - last.t
        if _deviation_m(last, ac, elapsed) >= p.deviation_m:
            self.counts["sent_deviation"] += 1
            return self._send(ac, now, identity)
        if ac.on_ground:
            due = p.ground_interval_s
        else:
            changed = (
                _moved(ac.alt_baro_ft, last.alt, p.altitude_ft)
                or (
                    ac.track_deg is not None
                    and last.track is not None
                    and _angle_diff(ac.track_deg, last.track) >= p.track_deg
                )
                or _moved(ac.gs_kt, last.gs, p.speed_kt)
                or _moved(ac.vrate_fpm, last.vrate, p.vrate_fpm)
            )
            low = ac.alt_baro_ft is None or ac.alt_baro_ft < p.low_ceiling_ft
            if low:
                due = p.low_changed_s if changed else p.low_steady_s
            else:
                due = p.high_changed_s if changed else p.high_steady_s
        if elapsed >= due:
            return self._send(ac, now, identity)
        self.counts["held"] += 1
        return False

    def _send(self, ac: Aircraft, now: float, identity: tuple[object, ...]) -> bool:
        self._sent[ac.icao] = _Sent(
            now, ac.lat, ac.lon, ac.alt_baro_ft, ac.track_deg, ac.gs_kt, ac.vrate_fpm, identity
        )
        self.counts["sent"] += 1
        return True

    def forget(self, icao: str) -> None:
        self._sent.pop(icao, None)
