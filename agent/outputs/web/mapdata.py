"""The map's fixed layers, worked out once at start: the site, range rings, the
configured strips and geofences, and the aerodromes `airportsdata` knows nearby.

The page draws them itself (SVG, no tiles: a strip has no internet).
"""

from __future__ import annotations

import csv
import math
from importlib import resources
from typing import TYPE_CHECKING, Any

from agent.geo import haversine_km

if TYPE_CHECKING:
    from agent.config import AgentConfig

# Aerodromes within this distance of the site are drawn.
AERODROME_KM = 100.0
RINGS_KM = (5, 10, 25, 50, 100, 200)


def nearby_aerodromes(lat: float, lon: float, within_km: float = AERODROME_KM) -> list[dict]:
    """airportsdata's aerodromes within `within_km` of the site, nearest first.

    Streamed from its CSV with a bounding box, as agent.intel.aerodromes loads it, so
    the 28,000 rows cost no lasting memory.
    """
    import airportsdata

    dlat = within_km / 111.0
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    found = []
    path = resources.files(airportsdata) / "airports.csv"
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                a_lat, a_lon = float(row["lat"]), float(row["lon"])
            except ValueError:
                continue
            if abs(a_lat - lat) > dlat or abs((a_lon - lon + 180) % 360 - 180) > dlon:
                continue
            km = haversine_km(lat, lon, a_lat, a_lon)
            if km <= within_km:
                found.append(
                    {
                        "code": row["icao"],
                        "name": row["name"],
                        "lat": a_lat,
                        "lon": a_lon,
                        "km": round(km, 1),
                    }
                )
    return sorted(found, key=lambda a: a["km"])


def static_map(cfg: AgentConfig) -> dict[str, Any]:
    site = cfg.site
    fences = [
        {
            "name": g.name,
            "kind": g.kind,
            "keep": g.keep,
            "center": list(g.center) if g.center else None,
            "radius_km": g.radius_km,
            "polygon": [list(p) for p in g.polygon],
        }
        for g in cfg.geofence
    ]
    position = site.position
    return {
        "site": {
            "name": site.name,
            "lat": None if position is None else position[0],
            "lon": None if position is None else position[1],
            "elevation_ft": site.elevation_ft,
        },
        "rings_km": list(RINGS_KM),
        "geofences": fences,
        "aerodromes": (
            nearby_aerodromes(*position) if position is not None and cfg.intel.aerodromes else []
        ),
    }
