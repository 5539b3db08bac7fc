"""Distances on the Earth, written once: every stage and the simulator measure with the
same sphere, so a position the simulator places 3 km out is 3 km out to the filter.

A leaf: imports nothing from the package. The sphere is good to 0.5 % at the ranges a
receiver hears (a few hundred km); nothing here needs the ellipsoid.
"""

from __future__ import annotations

import math

# IUGG mean Earth radius (R1), the radius that keeps a sphere's great-circle distances
# closest to the ellipsoid's on average.
EARTH_RADIUS_M = 6_371_008.8
EARTH_RADIUS_KM = EARTH_RADIUS_M / 1000.0

# Line of sight with standard refraction (4/3 Earth radius): km per sqrt(metre) of
# height, for each end of the path.
_HORIZON_KM_PER_SQRT_M = 4.12


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points (degrees) on the sphere."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, a)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from the first point to the second, 0-360 deg
    (coverage sectors around the site)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point `east_m` east and `north_m` north of (lat, lon), on a flat patch
    scaled at `lat`: exact enough for the tens of km scenarios place aircraft at."""
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


def radio_horizon_km(antenna_m: float, height_m: float) -> float:
    """How far an antenna `antenna_m` above ground sees a target `height_m` above
    ground: line of sight over a smooth Earth with standard refraction."""
    return _HORIZON_KM_PER_SQRT_M * (math.sqrt(max(antenna_m, 0.0)) + math.sqrt(max(height_m, 0.0)))
