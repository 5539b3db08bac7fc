"""The published payloads: one place that says what a position and an event contain.

`SCHEMA_VERSION` is carried in every payload as `v`; agent/data/adsb-v1.schema.json is
the written contract, and tests validate every published record against it. Keep this
module a leaf of the data flow: it reads aircraft state, it does not change it.
"""

from __future__ import annotations

from typing import Any

from agent.config import SiteConfig
from agent.filter import distance_km, height_ft
from agent.intel.classify import classify_callsign, squawk_meaning
from agent.track import Aircraft

SCHEMA_VERSION = 1

# Event kinds beside agent.intel.events.EVENT_KINDS (the schema lists them all).
TRACK_START = "track_start"
TRACK_END = "track_end"
EMERGENCY_SQUAWK = "emergency_squawk"


def _round(v: float | None, nd: int) -> float | None:
    return None if v is None else round(v, nd)


def position_record(ac: Aircraft, site: SiteConfig, tags: tuple[str, ...]) -> dict[str, Any]:
    """A position report of a selected aircraft at its latest position time."""
    return {
        "v": SCHEMA_VERSION,
        "type": "position",
        "site": site.name,
        "icao": ac.icao,
        "track_id": ac.track_id,
        "ts": round(ac.position_time if ac.position_time is not None else ac.last_seen, 3),
        "lat": ac.lat,
        "lon": ac.lon,
        "position_source": ac.position_source,
        "alt_baro_ft": ac.alt_baro_ft,
        "alt_gnss_ft": ac.alt_gnss_ft,
        "agl_ft": _round(height_ft(ac, site), 0),
        "agl_source": ac.height.source if ac.height else "baro_std",
        "agl_uncertainty_ft": ac.height.uncertainty_ft if ac.height else None,
        "ground_source": ac.height.ground if ac.height else "site",
        "distance_km": _round(distance_km(ac, site), 2),
        "gs_kt": ac.gs_kt,
        "track_deg": ac.track_deg,
        "vrate_fpm": ac.vrate_fpm,
        "on_ground": ac.on_ground,
        "callsign": ac.callsign,
        "callsign_kind": _callsign_kind(ac),
        "squawk": ac.squawk,
        "squawk_meaning": squawk_meaning(ac.squawk),
        "category": ac.category,
        "country": ac.country,
        "signal_dbfs": _round(ac.signal_dbfs, 1),
        "messages": ac.messages,
        "tags": list(tags),
    }


def event_record(
    kind: str, ac: Aircraft, site: SiteConfig, ts: float, tags: tuple[str, ...] = ()
) -> dict[str, Any]:
    """An event about one track; `track_id` ties it to that track's positions."""
    return {
        "v": SCHEMA_VERSION,
        "type": "event",
        "site": site.name,
        "event": kind,
        "icao": ac.icao,
        "track_id": ac.track_id,
        "ts": round(ts, 3),
        "lat": ac.lat,
        "lon": ac.lon,
        "alt_baro_ft": ac.alt_baro_ft,
        "agl_ft": ac.height.agl_ft if ac.height else None,
        "gs_kt": ac.gs_kt,
        "callsign": ac.callsign,
        "squawk": ac.squawk,
        "category": ac.category,
        "country": ac.country,
        "tags": list(tags),
    }


def _callsign_kind(ac: Aircraft) -> str | None:
    cs = classify_callsign(ac.callsign)
    return cs.kind if cs else None
