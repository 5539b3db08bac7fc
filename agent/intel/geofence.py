"""Named areas: configured strips, borders, areas of interest (circles and polygons).

Areas are small next to the Earth, so polygons are tested in a local flat projection
around their own centre (ray casting), and circles by great-circle distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from agent.geo import haversine_km


@dataclass(frozen=True, slots=True)
class Geofence:
    name: str
    kind: str  # strip | border | area (free text; it becomes a tag)
    center: tuple[float, float] | None = None
    radius_km: float | None = None
    polygon: tuple[tuple[float, float], ...] = ()
    keep: bool = False  # keep aircraft inside whatever the filter's limits

    def contains(self, lat: float, lon: float) -> bool:
        if self.center is not None and self.radius_km is not None:
            return haversine_km(self.center[0], self.center[1], lat, lon) <= self.radius_km
        return _in_polygon(self.polygon, lat, lon)


def _in_polygon(poly: tuple[tuple[float, float], ...], lat: float, lon: float) -> bool:
    if len(poly) < 3:
        return False
    lat0 = sum(p[0] for p in poly) / len(poly)
    kx = math.cos(math.radians(lat0))
    x, y = lon * kx, lat
    inside = False
    j = len(poly) - 1
    for i in range(len(poly)):
        yi, xi = poly[i][0], poly[i][1] * kx
        yj, xj = poly[j][0], poly[j][1] * kx
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def fences_at(fences: list[Geofence], lat: float, lon: float) -> list[Geofence]:
    return [f for f in fences if f.contains(lat, lon)]
