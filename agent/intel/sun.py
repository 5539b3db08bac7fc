"""Solar elevation at a place and time, for night-flight tagging.

The NOAA low-precision solar position (about 0.5 deg here): enough to tell day from
civil twilight from night, which is all the tag needs, without another dependency.
"""

from __future__ import annotations

import math

# Civil twilight ends when the sun's centre is 6 deg below the horizon.
NIGHT_BELOW_DEG = -6.0


def sun_elevation_deg(lat: float, lon: float, unix_s: float) -> float:
    days = unix_s / 86400.0 + 2440587.5 - 2451545.0  # days since J2000.0
    mean_lon = math.radians((280.460 + 0.9856474 * days) % 360)
    anomaly = math.radians((357.528 + 0.9856003 * days) % 360)
    ecl_lon = (
        mean_lon
        + math.radians(1.915) * math.sin(anomaly)
        + math.radians(0.020) * math.sin(2 * anomaly)
    )
    obliquity = math.radians(23.439 - 0.0000004 * days)
    decl = math.asin(math.sin(obliquity) * math.sin(ecl_lon))
    ra = math.atan2(math.cos(obliquity) * math.sin(ecl_lon), math.cos(ecl_lon))
    gmst_h = (18.697374558 + 24.06570982441908 * days) % 24
    hour_angle = math.radians(gmst_h * 15 + lon) - ra
    phi = math.radians(lat)
    sin_el = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle)
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_el))))


def is_night(lat: float, lon: float, unix_s: float) -> bool:
    return sun_elevation_deg(lat, lon, unix_s) < NIGHT_BELOW_DEG
