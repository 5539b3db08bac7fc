"""Events against ground truth on simulated GA scenarios (issue 7).

Prints the precision and recall of each event kind (run with -s to see the table).
"""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest

from agent.config import build_config
from agent.frame import Frame
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline
from agent.sim.encode import all_call_reply, altitude_reply
from agent.sim.trajectory import Aircraft, FlightPlan, Kinematics, Straight
from tests.helpers import validate
from tests.scenarios import (
    ALL,
    DAY,
    QNH_OFFSET_FT,
    SCORED_EVENTS,
    STRIP,
    Scenario,
    offset,
    qnh_from_traffic,
)


@pytest.fixture(scope="module")
def outcomes() -> list[tuple[Scenario, list[dict]]]:
    runs = []
    for make in ALL:
        scenario = make()
        records, _ = scenario.run()
        runs.append((scenario, records))
    return runs


def _events(records: list[dict]) -> Counter[str]:
    return Counter(r["event"] for r in records if r["type"] == "event")


def test_every_truth_event_is_found_and_no_other(outcomes):
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for scenario, records in outcomes:
        found = _events(records)
        for kind in SCORED_EVENTS:
            if kind in scenario.truth:
                tp[kind] += min(found[kind], 1)
                fn[kind] += 0 if found[kind] else 1
                fp[kind] += max(found[kind] - 1, 0)
            else:
                fp[kind] += found[kind]
    print("\nevent          precision  recall  (tp fp fn)")
    for kind in SCORED_EVENTS:
        p = tp[kind] / (tp[kind] + fp[kind]) if tp[kind] + fp[kind] else float("nan")
        r = tp[kind] / (tp[kind] + fn[kind]) if tp[kind] + fn[kind] else float("nan")
        print(f"{kind:<14}{p:>10.2f}{r:>8.2f}  ({tp[kind]} {fp[kind]} {fn[kind]})")
    assert sum(fn.values()) == 0, f"missed: {dict(fn)}"
    assert sum(fp.values()) == 0, f"false: {dict(fp)}"


def test_landing_is_placed_at_the_unknown_strip(outcomes):
    records = dict((s.name, r) for s, r in outcomes)["landing"]
    (landing,) = [r for r in records if r.get("event") == "landing"]
    assert "in:strip-x" in landing["tags"] and "away_from_aerodromes" in landing["tags"]


def test_circuit_at_a_known_aerodrome_is_tagged_with_it(outcomes):
    records = dict((s.name, r) for s, r in outcomes)["circuit"]
    tags = {t for r in records if r.get("event") in ("landing", "takeoff") for t in r["tags"]}
    assert tags == {"aerodrome:SBCY"}


def test_airliner_overhead_is_never_selected(outcomes):
    assert dict((s.name, r) for s, r in outcomes)["airliner"] == []


def test_no_false_lost_low_for_aircraft_leaving_coverage(outcomes):
    records = dict((s.name, r) for s, r in outcomes)["out-of-range"]
    ended = [r for r in records if r.get("event") == "track_end"]
    assert len(ended) == 2  # both were tracked to the end of coverage
    assert _events(records)["lost_low"] == 0


def test_published_records_follow_the_schema(outcomes):
    for _, records in outcomes:
        for r in records:
            validate(r)


def test_height_above_ground_within_100_ft_when_qnh_comes_from_traffic():
    scenario = qnh_from_traffic()
    records, _ = scenario.run()
    ga = scenario.fleet[-1]
    mine = [r for r in records if r["type"] == "position" and r["icao"] == ga.icao_hex]
    assert len(mine) > 10
    estimated = [r for r in mine if r["agl_source"] == "baro_traffic"]
    assert len(estimated) >= len(mine) - 2  # all but the first moments, before samples
    errors = []
    for r in estimated:
        truth = ga.state(r["ts"] - scenario.epoch)
        true_agl = truth.alt_ft + QNH_OFFSET_FT - scenario.site.elevation_ft
        errors.append(abs(r["agl_ft"] - true_agl))
    print(f"\nAGL error with QNH from traffic: max {max(errors):.0f} ft over {len(errors)} fixes")
    assert max(errors) <= 100
    # Without the correction the error would be the whole QNH offset.
    assert abs(QNH_OFFSET_FT) > 300


def test_emergency_squawk_is_an_event_with_its_meaning():
    s = STRIP
    lat, lon = offset(s, -5_000.0, 0.0)
    start = Kinematics(lat, lon, s.elevation_ft + 1500, gs_kt=100.0, track_deg=90.0)
    ac = Aircraft(
        icao=0xE49008,
        callsign="PTSOS",
        category="A1",
        plan=FlightPlan(start, [Straight(200.0)]),
        squawk="7000",
        squawk_changes=((60.0, "7700"),),
    )
    records, _ = Scenario("emergency", s, (ac,), 150.0, set()).run()
    (event,) = [r for r in records if r.get("event") == "emergency_squawk"]
    assert event["squawk"] == "7700" and event["ts"] >= DAY + 60.0
    later = [r for r in records if r["type"] == "position" and r["ts"] > event["ts"]]
    assert later and later[0]["squawk_meaning"] == "emergency"


def test_mode_s_only_contact_is_reported_unlocated_with_its_altitude():
    """A transponder without ADS-B: all-call (DF11) and altitude replies (DF4) only."""
    icao = 0xE4B00B
    frames = []
    for i in range(60):  # one minute, a reply pair every second
        t = DAY + i
        frames.append(Frame(all_call_reply(icao), t, -20.0, "sim"))
        frames.append(Frame(altitude_reply(icao, 1800.0), t + 0.5, -20.0, "sim"))
    cfg = build_config(
        {
            "site": {
                "name": "s",
                "lat": STRIP.lat,
                "lon": STRIP.lon,
                "elevation_ft": STRIP.elevation_ft,
            }
        }
    )
    out = io.StringIO()
    pipeline = Pipeline(cfg, [StdoutPublisher(out)])
    for f in frames:
        pipeline.handle(f)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["unlocated_contact"]
    (event,) = records
    assert event["icao"] == "E4B00B" and event["alt_baro_ft"] == 1800
    assert event["lat"] is None and "mode_s_only" in event["tags"]
    validate(event)
