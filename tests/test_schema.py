"""Drift test: agent.schema (the contract in code), the JSON Schema consumers read
(agent/data/adsb-v1.schema.json) and what the pipeline really publishes must agree.

Each check fails when one side gains an event kind, a key or an enumerated value the
other lacks, rather than when a consumer first receives it.
"""

from __future__ import annotations

import ast
import io
import json
import typing
from pathlib import Path
from typing import Any

import pytest

from agent import schema
from agent.config import SiteConfig, build_config
from agent.intel import classify, height
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline
from agent.records import event_record, position_record
from agent.schema import EventKind, EventRecord, PositionRecord
from agent.sim import scenario
from tests.helpers import SCHEMA, located_aircraft, validate

DEFS = SCHEMA["$defs"]
TYPED = {"position": PositionRecord, "event": EventRecord}
SITE = SiteConfig(name="drift", lat=-15.6, lon=-56.1, elevation_ft=600.0)


def _enum(record_type: str, key: str) -> list[Any]:
    return DEFS[record_type]["properties"][key]["enum"]


def _keys(typed: type) -> list[str]:
    """Declared keys in declaration order (the order the builder writes)."""
    return list(typed.__annotations__)


def test_event_kinds_are_the_json_schemas_event_enum():
    assert [k.value for k in EventKind] == _enum("event", "event")


def test_every_event_kind_is_explained_in_the_json_schema():
    description = DEFS["event"]["properties"]["event"]["description"]
    assert [k for k in EventKind if k.value not in description] == []


@pytest.mark.parametrize(
    ("values", "record_type", "key"),
    [
        (schema.POSITION_SOURCES, "position", "position_source"),
        (schema.AGL_SOURCES, "position", "agl_source"),
        (schema.GROUND_SOURCES, "position", "ground_source"),
        (schema.CALLSIGN_KINDS, "position", "callsign_kind"),
        (schema.SQUAWK_MEANINGS, "position", "squawk_meaning"),
    ],
)
def test_enumerated_values_are_the_json_schemas(values, record_type, key):
    assert values == {v for v in _enum(record_type, key) if v is not None}


@pytest.mark.parametrize("record_type", ["position", "event"])
def test_typed_record_keys_are_the_json_schemas(record_type):
    typed, declared = TYPED[record_type], DEFS[record_type]
    properties, required = set(declared["properties"]), set(declared["required"])
    assert declared["additionalProperties"] is False
    assert set(_keys(typed)) - properties == set()  # every typed key is declared
    assert required - typed.__required_keys__ == set()  # every required key is typed
    assert typed.__required_keys__ == required  # and nothing more is promised
    assert typed.__optional_keys__ == properties - required == {"seq"}


def test_the_record_type_is_the_json_schemas_const():
    for record_type, typed in TYPED.items():
        hints = typing.get_type_hints(typed)
        assert typing.get_args(hints["type"]) == (DEFS[record_type]["properties"]["type"]["const"],)
    assert DEFS["position"]["properties"]["v"]["const"] == schema.SCHEMA_VERSION


def test_the_intel_modules_produce_only_declared_values():
    assert set(classify.SQUAWK_MEANING.values()) <= schema.SQUAWK_MEANINGS
    assert set(height._UNCERTAINTY_FT) == schema.AGL_SOURCES
    callsigns = ("TAM3054", "PTABC", "N123AB", "1234")  # airline, 2 registrations, other
    kinds = {classify.classify_callsign(cs).kind for cs in callsigns}  # type: ignore[union-attr]
    assert kinds == schema.CALLSIGN_KINDS


def test_schema_imports_nothing_from_the_package():
    tree = ast.parse(Path(schema.__file__).read_text())
    modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert [m for m in modules if m.split(".")[0] == "agent"] == []


def test_built_records_have_the_typed_keys_in_order_and_validate():
    ac = located_aircraft(1, callsign="PTABC", squawk="7000", category="A1")
    position = position_record(ac, SITE, ("low",))
    event = event_record(EventKind.TRACK_START, ac, SITE, ac.last_seen, ("low",))
    assert list(position) == [k for k in _keys(PositionRecord) if k != "seq"]
    assert list(event) == [k for k in _keys(EventRecord) if k != "seq"]
    for record in (position, event, {**position, "seq": 1}, {**event, "seq": 2}):
        validate(record)


def test_an_undeclared_event_kind_is_refused_where_it_is_built():
    with pytest.raises(ValueError, match="teleport"):
        event_record("teleport", located_aircraft(1), SITE, 1.0)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=[True, False], ids=["filter", "all"])
def demo_records(request) -> list[dict[str, Any]]:
    """What `adsb-agent demo` prints: the demo scenario through the whole pipeline."""
    cfg = build_config(
        {
            "site": {
                "name": "demo",
                "lat": scenario.SITE_LAT,
                "lon": scenario.SITE_LON,
                "elevation_ft": scenario.SITE_ELEVATION_FT,
            },
            "filter": {"enabled": request.param},
        }
    )
    out = io.StringIO()
    pipeline = Pipeline(cfg, [StdoutPublisher(out)])
    frames, _truth = scenario.demo_frames(duration_s=300.0)
    for frame in frames:
        pipeline.handle(frame)
    pipeline.finish()
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_demo_replay_publishes_only_declared_keys_and_validates(demo_records):
    kinds = set()
    for record in demo_records:
        typed_keys = [k for k in _keys(TYPED[record["type"]]) if k != "seq"]
        assert list(record) == typed_keys  # declared keys, all of them, in order
        validate(record)
        if record["type"] == "event":
            kinds.add(EventKind(record["event"]))
    assert {"position", "event"} == {r["type"] for r in demo_records}
    assert {EventKind.TRACK_START, EventKind.TRACK_END, EventKind.LANDING} <= kinds
