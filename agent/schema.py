"""What the agent publishes, in code: the payload version, every event kind, the keys of
a position and an event record and the values their enumerated fields take.

agent/data/adsb-v1.schema.json is the written contract for consumers; this module is
the same contract for our own code, and tests/test_schema.py fails when the two drift
apart (an event kind, a key, an enumerated value added to one and not the other).

A leaf: imports nothing from the package, so every stage can use it without pulling in
another. The records are TypedDicts: at run time they are the plain dicts agent.records
builds (no copy, no conversion on the hot path); their declared key order is the order
the builder writes, which is the order of the published JSON.

Adding an event kind: a member of `EventKind`, the same string in the JSON Schema's
`event` enum (and its description), then the code that emits it.
"""

# No `from __future__ import annotations` here: TypedDict reads NotRequired[...] from
# evaluated annotations, and as strings every key would count as required.
from enum import StrEnum
from typing import Final, Literal, NotRequired, TypedDict, get_args

# Carried in every payload as `v`; bump it (and the topic prefix adsb/v1) only for a
# change a consumer must know about: a removed or retyped key.
SCHEMA_VERSION: Final = 1


class EventKind(StrEnum):
    """The `event` of an event record. Members are `str`s equal to their JSON value."""

    TRACK_START = "track_start"  # first selected record of a track
    TRACK_END = "track_end"  # a selected track went silent
    EMERGENCY_SQUAWK = "emergency_squawk"  # 7500/7600/7700 set
    LANDING = "landing"  # ground contact after flight
    TAKEOFF = "takeoff"  # flight after ground contact
    LOW_PASS = "low_pass"  # down low at speed and up again without landing
    LOITER = "loiter"  # circling within a small radius for minutes
    LOST_LOW = "lost_low"  # ended airborne and low, well inside coverage
    NIGHT_FLIGHT = "night_flight"  # airborne with the sun below -6 deg
    COUNTRY_MISMATCH = "country_mismatch"  # registration of another state than the address
    UNLOCATED_CONTACT = "unlocated_contact"  # heard (Mode S only) but never located


# How a position was decoded: even/odd pair, one frame against a reference, surface.
PositionSource = Literal["cpr_global", "cpr_local", "cpr_surface"]
# Which altitude the height above ground came from (agent.intel.height).
AglSource = Literal["gnss", "baro_qnh", "baro_traffic", "baro_std"]
# Which ground it is measured from: an SRTM tile, or the configured site elevation.
GroundSource = Literal["terrain", "site"]
# What a callsign looks like (agent.intel.classify).
CallsignKind = Literal["airline", "registration", "other"]
# What a squawk code means by convention (agent.intel.classify).
SquawkMeaning = Literal[
    "unlawful_interference",
    "radio_failure",
    "emergency",
    "vfr_icao",
    "vfr_north_america",
    "no_code_assigned",
    "military_intercept",
]

POSITION_SOURCES: Final = frozenset(get_args(PositionSource))
AGL_SOURCES: Final = frozenset(get_args(AglSource))
GROUND_SOURCES: Final = frozenset(get_args(GroundSource))
CALLSIGN_KINDS: Final = frozenset(get_args(CallsignKind))
SQUAWK_MEANINGS: Final = frozenset(get_args(SquawkMeaning))


class PositionRecord(TypedDict):
    """Where a selected aircraft was, and what it was, at one position time.

    Published on adsb/v1/<site>/position/<ICAO>. None means not (yet) received.
    """

    v: int  # SCHEMA_VERSION
    type: Literal["position"]
    site: str
    icao: str  # upper-case hex
    track_id: str  # icao plus the Unix second it was first heard
    ts: float  # receive time of the position, Unix seconds (UTC)
    lat: float
    lon: float
    position_source: PositionSource
    alt_baro_ft: int | None  # pressure altitude (1013.25 hPa)
    alt_gnss_ft: int | None  # above the WGS84 ellipsoid
    agl_ft: float | None
    agl_source: AglSource
    agl_uncertainty_ft: float | None
    ground_source: GroundSource
    distance_km: float | None  # from the receiver
    gs_kt: float | None
    track_deg: float | None
    vrate_fpm: int | None
    on_ground: bool | None
    callsign: str | None
    callsign_kind: CallsignKind | None
    squawk: str | None
    squawk_meaning: SquawkMeaning | None
    category: str | None  # ADS-B emitter category, "A1" ...
    country: str | None  # ISO alpha-2 of the address block
    signal_dbfs: float | None
    messages: int
    tags: list[str]  # why it was selected
    seq: NotRequired[int]  # added by the outbox when committed; absent on JSON lines


class EventRecord(TypedDict):
    """Something one track did; `track_id` joins it to that track's positions.

    Published on adsb/v1/<site>/events.
    """

    v: int  # SCHEMA_VERSION
    type: Literal["event"]
    site: str
    event: EventKind
    icao: str
    track_id: str
    ts: float
    lat: float | None
    lon: float | None
    alt_baro_ft: int | None
    agl_ft: float | None
    gs_kt: float | None
    callsign: str | None
    squawk: str | None
    category: str | None
    country: str | None
    tags: list[str]  # where it happened, or why the track was selected
    seq: NotRequired[int]  # added by the outbox when committed; absent on JSON lines


# Either payload; `type` tells which.
Record = PositionRecord | EventRecord
