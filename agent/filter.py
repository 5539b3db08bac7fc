"""The low-flying general-aviation filter: which aircraft the site reports.

Tag, don't judge: a kept aircraft carries every reason it passed (`tags`), so the
central side can tell "low and slow near the strip" from "unknown category".
Order: deny lists drop; allow lists and `keep` geofences keep; otherwise the aircraft
must be low (height above ground known and under the ceiling) and pass the category,
speed and distance limits. Unknown category or speed passes with a tag, because many
light aircraft send no category (A0) at all.

With the category unknown (not yet heard, A0, or never sent: Mode S-only), what else is
known decides: an airline-style callsign (`ABC123`), or answers to Enhanced Surveillance
registers (large IFR aircraft), say it is not light GA. The pipeline holds a new track's
records until the category is heard or its hold time ends, so this is the judgement
made with partial knowledge, not a guess that is published and regretted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.config import FilterConfig, SiteConfig
from agent.intel.classify import classify_callsign
from agent.intel.geofence import Geofence
from agent.track import Aircraft

_LIGHT = frozenset(("A1", "A2", "B1", "B4", "B6"))


@dataclass(frozen=True, slots=True)
class Verdict:
    keep: bool
    tags: tuple[str, ...]
    reason: str | None = None  # why dropped, for counters


def judge(
    ac: Aircraft, rules: FilterConfig, site: SiteConfig, fences: Sequence[Geofence] = ()
) -> Verdict:
    """Decide whether `ac` is low-flying GA worth reporting, and why."""
    if not rules.enabled:
        return Verdict(True, ("filter_off",))
    callsign = (ac.callsign or "").upper()
    if ac.icao in rules.deny_addresses or (callsign and callsign in rules.deny_callsigns):
        return Verdict(False, (), "deny_list")
    inside = (
        []
        if ac.lat is None or ac.lon is None
        else [f for f in fences if f.contains(ac.lat, ac.lon)]
    )
    place = tuple(f"in:{f.name}" for f in inside)
    if ac.icao in rules.allow_addresses or (callsign and callsign in rules.allow_callsigns):
        return Verdict(True, ("allow_list", *place))
    if any(f.keep for f in inside):
        return Verdict(True, ("geofence_keep", *place))
    tags: list[str] = list(place)
    if ac.on_ground:
        tags.append("on_ground")
    else:
        height = ac.height_above_ft(site.elevation_ft)
        if height is None:
            return Verdict(False, (), "no_altitude")
        if height > rules.max_height_ft:
            return Verdict(False, (), "too_high")
        tags.append("low")
    cat = ac.category
    if cat is not None and cat in rules.drop_categories:
        return Verdict(False, (), "category")
    if rules.keep_categories:
        if cat not in rules.keep_categories:
            return Verdict(False, (), "category")
        tags.append("category_kept")
    elif cat is None or cat.endswith("0"):
        kind = classify_callsign(callsign)
        if kind is not None and kind.kind == "airline":
            return Verdict(False, (), "airline_callsign")
        if ac.ehs:
            return Verdict(False, (), "enhanced_surveillance")
        tags.append("category_unknown")
    if cat == "A7":
        tags.append("rotorcraft")
    elif cat in _LIGHT:
        tags.append("light")
    if rules.max_ground_speed_kt is not None and ac.gs_kt is not None:
        if ac.gs_kt > rules.max_ground_speed_kt:
            return Verdict(False, (), "too_fast")
        tags.append("slow")
    dist = ac.distance_km(site.position)
    if rules.max_distance_km is not None and dist is not None:
        if dist > rules.max_distance_km:
            return Verdict(False, (), "too_far")
        tags.append("near_site")
    return Verdict(True, tuple(tags))
