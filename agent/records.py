"""Builds the published payloads from tracker state: one place that says how an aircraft
becomes a position record or an event record.

What the records contain (keys, their order, enumerated values, `SCHEMA_VERSION`) is
declared in agent.schema and written down for consumers in
agent/data/adsb-v1.schema.json; tests/test_schema.py keeps the three in step. This
module reads aircraft state, it never changes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.intel.classify import classify_callsign, squawk_meaning
from agent.schema import SCHEMA_VERSION, EventKind, EventRecord, PositionRecord
from agent.track import Aircraft

if TYPE_CHECKING:
    from agent.config import SiteConfig


def _round(v: float | None, nd: int) -> float | None:
    return None if v is None else round(v, nd)


def position_record(ac: Aircraft, site: SiteConfig, tags: tuple[str, ...]) -> PositionRecord:
    """A position report of a selected aircraft at its latest position time."""
    return {
        "v": SCHEMA_VERSION,
        "type": "position",
        "site": site.name,
        "icao": ac.icao,
        "track_id": ac.track_id,
        "ts": round(ac.position_time if ac.position_time is not None else ac.last_seen, 3),
        "lat": ac.lat,  # type: ignore[typeddict-item]  # only located aircraft are reported
        "lon": ac.lon,  # type: ignore[typeddict-item]
        "position_source": ac.position_source,  # type: ignore[typeddict-item]
        "alt_baro_ft": ac.alt_baro_ft,
        "alt_gnss_ft": ac.alt_gnss_ft,
        "agl_ft": _round(ac.height_above_ft(site.elevation_ft), 0),
        "agl_source": ac.height.source if ac.height else "baro_std",
        "agl_uncertainty_ft": ac.height.uncertainty_ft if ac.height else None,
        "ground_source": ac.height.ground if ac.height else "site",
        "distance_km": _round(ac.distance_km(site.position), 2),
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
    kind: EventKind, ac: Aircraft, site: SiteConfig, ts: float, tags: tuple[str, ...] = ()
) -> EventRecord:
    """An event about one track; `track_id` ties it to that track's positions.

    Raises:
        ValueError: `kind` is not an EventKind value (the schema would refuse it).
    """
    return {
        "v": SCHEMA_VERSION,
        "type": "event",
        "site": site.name,
        "event": EventKind(kind),
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
