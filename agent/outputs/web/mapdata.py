"""The map's fixed layers, worked out once at start: the site, range rings, the
configured strips and geofences, and the aerodromes `airportsdata` knows nearby (from
the table the pipeline already holds: agent.intel.aerodromes).

The page draws them itself (SVG, no tiles: a strip has no internet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.intel.aerodromes import Aerodromes

# Aerodromes within this distance of the site are drawn.
AERODROME_KM = 100.0
RINGS_KM = (5, 10, 25, 50, 100, 200)


def nearby_aerodromes(
    table: Aerodromes, lat: float, lon: float, within_km: float = AERODROME_KM
) -> list[dict]:
    """The aerodromes within `within_km` of the site, nearest first."""
    return [
        {"code": a.code, "name": a.name, "lat": a.lat, "lon": a.lon, "km": round(km, 1)}
        for a, km in table.within(lat, lon, within_km)
    ]


def static_map(cfg: AgentConfig, aerodromes: Aerodromes | None) -> dict[str, Any]:
    """The fixed layers; `aerodromes` is the table the pipeline loaded (None: none)."""
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
            nearby_aerodromes(aerodromes, *position)
            if position is not None and aerodromes is not None
            else []
        ),
    }
