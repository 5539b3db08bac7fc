"""Low-flying GA filter: who is kept, and the tags that say why."""

from __future__ import annotations

from agent.config import FilterConfig, SiteConfig
from agent.filter import judge
from agent.track import Aircraft

SITE = SiteConfig(name="strip", lat=-15.6, lon=-56.1, elevation_ft=600)


def _ac(**kw) -> Aircraft:
    base = dict(icao="E48A00", first_seen=0.0, last_seen=0.0, lat=-15.61, lon=-56.11)
    base.update(kw)
    return Aircraft(**base)


def test_light_aircraft_low_and_slow_is_kept_with_reasons():
    v = judge(_ac(alt_baro_ft=1500, category="A1", gs_kt=95.0), FilterConfig(), SITE)
    assert v.keep
    assert {"low", "light", "slow", "near_site"} <= set(v.tags)


def test_ceiling_is_above_site_elevation():
    rules = FilterConfig(max_height_ft=1000)
    assert judge(_ac(alt_baro_ft=1550, category="A1"), rules, SITE).keep  # 950 ft above
    assert judge(_ac(alt_baro_ft=1650, category="A1"), rules, SITE).reason == "too_high"


def test_airliner_overhead_is_dropped_by_height_and_category():
    assert judge(_ac(alt_baro_ft=37000, category="A3"), FilterConfig(), SITE).reason == "too_high"
    low_heavy = judge(_ac(alt_baro_ft=1000, category="A5"), FilterConfig(), SITE)
    assert low_heavy.reason == "category"


def test_unknown_category_is_kept_and_tagged():
    v = judge(_ac(alt_baro_ft=900, category="A0"), FilterConfig(), SITE)
    assert v.keep and "category_unknown" in v.tags
    v = judge(_ac(alt_baro_ft=900, category="A7"), FilterConfig(), SITE)
    assert v.keep and "rotorcraft" in v.tags


def test_speed_distance_and_altitude_limits():
    assert judge(_ac(alt_baro_ft=900, gs_kt=300.0), FilterConfig(), SITE).reason == "too_fast"
    far = _ac(alt_baro_ft=900, lat=-10.0, lon=-56.1)
    assert judge(far, FilterConfig(), SITE).reason == "too_far"
    assert judge(_ac(), FilterConfig(), SITE).reason == "no_altitude"


def test_keep_list_restricts_categories():
    rules = FilterConfig(keep_categories=["A7"])
    assert not judge(_ac(alt_baro_ft=900, category="A1"), rules, SITE).keep
    assert judge(_ac(alt_baro_ft=900, category="A7"), rules, SITE).keep


def test_filter_off_keeps_everything():
    assert judge(_ac(alt_baro_ft=39000, category="A5"), FilterConfig(enabled=False), SITE).keep
