"""Known aerodromes (the `airportsdata` package: ~28,000 airports and strips worldwide),
to tell "near a known aerodrome" from "away from any".

Bucketed by whole degree once at start, so a lookup compares a handful of candidates
instead of the world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from agent.decode import haversine_km

# Within this distance an aircraft is "at" an aerodrome (a circuit stays within ~3 km).
NEAR_KM = 5.0


@dataclass(frozen=True, slots=True)
class Aerodrome:
    code: str
    name: str
    lat: float
    lon: float
    elevation_ft: float


class Aerodromes:
    def __init__(self, entries: list[Aerodrome]):
        self._entries = entries
        self._cells: dict[tuple[int, int], list[int]] = {}
        for i, e in enumerate(entries):
            self._cells.setdefault((math.floor(e.lat), math.floor(e.lon)), []).append(i)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls) -> Aerodromes:
        import airportsdata

        rows = airportsdata.load("ICAO")
        return cls(
            [
                Aerodrome(
                    code, r["name"], float(r["lat"]), float(r["lon"]), float(r["elevation"] or 0)
                )
                for code, r in rows.items()
            ]
        )

    def nearest(self, lat: float, lon: float, within_km: float = NEAR_KM) -> Aerodrome | None:
        """The closest aerodrome within `within_km`, or None."""
        la, lo = math.floor(lat), math.floor(lon)
        best, best_km = None, within_km
        for dla in (-1, 0, 1):
            for dlo in (-1, 0, 1):
                for i in self._cells.get((la + dla, (lo + dlo + 180) % 360 - 180), ()):
                    e = self._entries[i]
                    km = haversine_km(lat, lon, e.lat, e.lon)
                    if km <= best_km:
                        best, best_km = e, km
        return best
