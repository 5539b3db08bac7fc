"""Known aerodromes (the `airportsdata` package: ~28,000 airports and strips worldwide),
to tell "near a known aerodrome" from "away from any".

Bucketed by whole degree once at start, so a lookup compares a handful of candidates
instead of the world.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources

from agent.geo import haversine_km

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
        """Every aerodrome airportsdata knows, streamed from its CSV: building its dict of
        dicts first would cost ~30 MB of peak memory on a small Pi."""
        import airportsdata

        entries: list[Aerodrome] = []
        path = resources.files(airportsdata) / "airports.csv"
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if not row["lat"] or not row["lon"]:
                    continue
                entries.append(
                    Aerodrome(
                        row["icao"],
                        row["name"],
                        float(row["lat"]),
                        float(row["lon"]),
                        float(row["elevation"] or 0),
                    )
                )
        return cls(entries)

    def nearest(self, lat: float, lon: float, within_km: float = NEAR_KM) -> Aerodrome | None:
        """The closest aerodrome within `within_km`, or None.

        A bounding box in degrees rules out almost every candidate before the
        great-circle distance is computed (Mato Grosso alone has hundreds of strips).
        """
        dlat = within_km / 111.0
        dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
        best, best_km = None, within_km
        for cla in range(math.floor(lat - dlat), math.floor(lat + dlat) + 1):
            for clo in range(math.floor(lon - dlon), math.floor(lon + dlon) + 1):
                for i in self._cells.get((cla, (clo + 180) % 360 - 180), ()):
                    e = self._entries[i]
                    if abs(e.lat - lat) > dlat or abs(e.lon - lon) > dlon:
                        continue
                    km = haversine_km(lat, lon, e.lat, e.lon)
                    if km <= best_km:
                        best, best_km = e, km
        return best
