"""Distances on the sphere: the one Earth every stage and the simulator share."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from agent import geo
from agent.geo import EARTH_RADIUS_KM, EARTH_RADIUS_M, haversine_km, offset, radio_horizon_km

AGENT = Path(__file__).resolve().parents[1] / "agent"


def test_a_degree_along_a_meridian_is_the_radius_times_pi_over_180():
    assert haversine_km(0.0, 10.0, 1.0, 10.0) == pytest.approx(EARTH_RADIUS_KM * math.pi / 180)
    assert EARTH_RADIUS_M == EARTH_RADIUS_KM * 1000.0


def test_distance_is_symmetric_and_zero_for_one_point():
    a, b = (-15.6, -56.1), (-14.9, -57.8)
    assert haversine_km(*a, *b) == pytest.approx(haversine_km(*b, *a), rel=1e-12)
    assert haversine_km(*a, *a) == 0.0


def test_antipodes_are_half_the_circumference_apart():
    assert haversine_km(10.0, 20.0, -10.0, -160.0) == pytest.approx(math.pi * EARTH_RADIUS_KM)


def test_an_offset_lands_where_the_great_circle_says():
    lat, lon = offset(-15.6, -56.1, 3000.0, 4000.0)  # a 3-4-5 triangle
    assert haversine_km(-15.6, -56.1, lat, lon) == pytest.approx(5.0, rel=1e-3)
    assert lat > -15.6 and lon > -56.1  # north and east


def test_radio_horizon_matches_reference_figures():
    # shared/REFERENCE.md: antenna 10 m up, ~64 km at 500 ft, ~85 km at 1,000 ft.
    assert radio_horizon_km(10, 500 * 0.3048) == pytest.approx(64, abs=2)
    assert radio_horizon_km(10, 1000 * 0.3048) == pytest.approx(85, abs=3)
    assert radio_horizon_km(10, -50.0) == radio_horizon_km(10, 0.0)  # below ground: none


def test_geo_is_a_leaf():
    tree = ast.parse(Path(geo.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + [
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    ]
    assert not [m for m in imported if m.split(".")[0] == "agent"]


def test_the_earth_radius_is_written_only_in_geo():
    """A second copy of the radius drifts (it was once written four times)."""
    copies = [
        str(path.relative_to(AGENT))
        for path in AGENT.rglob("*.py")
        if path.name != "geo.py" and "6371" in path.read_text().replace("_", "")
    ]
    assert copies == []


def test_bearings_point_the_right_way():
    assert geo.bearing_deg(0.0, 0.0, 1.0, 0.0) == pytest.approx(0.0)  # north
    assert geo.bearing_deg(0.0, 0.0, 0.0, 1.0) == pytest.approx(90.0)  # east
    assert geo.bearing_deg(0.0, 0.0, -1.0, 0.0) == pytest.approx(180.0)
    assert geo.bearing_deg(0.0, 0.0, 0.0, -1.0) == pytest.approx(270.0)
