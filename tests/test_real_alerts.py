"""Alerts on public real recordings (issue 13): tests/data/real, labelled by hand.

Run `python bench/alerts.py` for the whole table, real and simulated side by side.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import agent.intel.events
from agent.config import build_config
from agent.frame import Frame
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline
from agent.sim.encode import all_call_reply, altitude_reply
from tests.conftest import REPO, shared_root
from tests.helpers import validate
from tests.real import Recording, recordings, score
from tests.scenarios import DAY, STRIP


@pytest.fixture(scope="module")
def real() -> dict[str, Recording]:
    return {r.name: r for r in recordings(shared_root())}


@pytest.fixture(scope="module")
def runs(real) -> dict[str, list[dict]]:
    out = {}
    for name in ("pulkovo-2018", "atlanta-2025", "delft-2015"):
        records, _ = real[name].run()
        out[name] = records
    return out


def test_labelled_aircraft_are_selected_and_the_rest_never(real, runs):
    for name, records in runs.items():
        s = score(real[name], records)
        assert not s.never_selected, f"{name}: must never be selected: {s.never_selected}"
        assert real[name].low_ga <= s.selected, f"{name}: low GA missed"
        assert not s.missed, f"{name}: missed {s.missed}"
        kinds = {r["event"] for r in records if r["type"] == "event"}
        assert not kinds & real[name].never_events, f"{name}: {kinds}"
        for r in records:
            validate(r)


def test_airliner_whose_position_precedes_its_identification_is_never_published(real):
    """SDM6244 (A3) at 2,600 ft on approach: its first position comes 0.3 s before its
    identification. Without its Comm-B replies (which also give it away as a large
    aircraft), only the hold stands between its first position and the operator."""
    rec = real["pulkovo-2018"]
    frames = [f for f in rec.frames() if f.df not in (20, 21)]

    def published(**config) -> set[str]:
        cfg = build_config({"site": {"name": rec.name, **rec.site}, **config})
        out = io.StringIO()
        pipeline = Pipeline(cfg, [StdoutPublisher(out)])
        for f in frames:
            pipeline.handle(f)
        pipeline.finish()
        return {json.loads(line)["icao"] for line in out.getvalue().splitlines()}

    assert "400159" in published(filter={"hold_s": 0})  # what the agent did before
    assert published() == set()


def test_low_descending_aircraft_lost_on_final_is_a_likely_landing(runs):
    """N464T descending at about 100 ft towards DeKalb-Peachtree, then silent: it fades
    because it descends, so the fading rule must not suppress it."""
    (lost,) = [r for r in runs["atlanta-2025"] if r.get("event") == "lost_low"]
    assert lost["icao"] == "A5AA20" and lost["callsign"] == "N464T"
    assert "likely:landing" in lost["tags"] and "aerodrome:KPDK" in lost["tags"]


def test_airborne_heights_are_never_below_ground(runs):
    """925 ft pressure altitude over a 1,000 ft site used to read -75 ft."""
    heights = [
        r["agl_ft"] for records in runs.values() for r in records if r.get("agl_ft") is not None
    ]
    assert heights and min(heights) >= 0


def test_position_source_is_global_only_for_paired_frames(real):
    """A cpr_global position needs a frame of the other parity at most 10 s older;
    pyModeS solves most later frames against the previous position: cpr_local."""
    rec = real["atlanta-2025"]
    records, _ = rec.run(filter={"enabled": False}, limiter={"enabled": False})
    parity: dict[tuple[str, float], int] = {}
    for f in rec.frames():
        if f.df == 17 and 9 <= f.msg[4] >> 3 <= 18:
            parity[(f.msg[1:4].hex().upper(), round(f.rx_time, 3))] = (f.msg[6] >> 2) & 1
    labels: Counter[str] = Counter()
    for r in (r for r in records if r["type"] == "position"):
        labels[r["position_source"]] += 1
        if r["position_source"] != "cpr_global":
            continue
        fmt = parity[(r["icao"], r["ts"])]
        paired = any(
            icao == r["icao"] and p != fmt and 0 <= r["ts"] - t <= 10.0
            for (icao, t), p in parity.items()
        )
        assert paired, r
    assert labels["cpr_global"] > 0 and labels["cpr_local"] > labels["cpr_global"]


def test_low_mode_s_only_airliners_are_not_reported(real):
    """Comm-B replies only: the low ones (ACA824 at 850 ft, DAL136 at 1,625 ft) say
    what they are through their callsign and Enhanced Surveillance registers."""
    records, pipeline = real["delft-commb-2017"].run()
    assert records == []
    counts = pipeline.counts
    assert counts["unlocated_filtered_enhanced_surveillance"] > 0
    assert counts["unlocated_filtered_airline_callsign"] > 0


def test_low_mode_s_only_contact_heard_nine_times_is_reported_with_its_altitude():
    """No ADS-B: 9 replies in 52 s at 400-500 ft (the contact the 20-message threshold
    never reported), simulated over a strip; the real one is 484516 in delft-2015."""
    icao = 0xE4B00C
    frames = [Frame(all_call_reply(icao), DAY, -30.0, "sim")]
    for i in range(9):
        alt = STRIP.elevation_ft + (400 if i % 2 else 500)
        frames.append(Frame(altitude_reply(icao, alt), DAY + 6.5 * i, -30.0, "sim"))
    cfg = build_config(
        {"site": {"name": "s", "lat": STRIP.lat, "lon": STRIP.lon, "elevation_ft": 800.0}}
    )
    out = io.StringIO()
    pipeline = Pipeline(cfg, [StdoutPublisher(out)])
    for f in frames:
        pipeline.handle(f)
    (event,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert event["event"] == "unlocated_contact" and event["ts"] - DAY <= 30.0
    assert event["alt_baro_ft"] in (1200, 1300) and 400 <= event["agl_ft"] <= 500
    assert "mode_s_only" in event["tags"] and "low" in event["tags"]
    validate(event)


DELFT_START = "2015-03-03T16:13:50.388510"  # the log's first time in the excerpt (UTC)
DELFT_SITE = ("--site-lat", "52.0", "--site-lon", "4.37", "--site-elevation-ft", "0")


def _replay_delft(real: dict[str, Recording], tmp_path: Path, **filter_cfg: float) -> list[dict]:
    """`adsb-agent replay` of the Delft minute, as an operator runs it; `filter_cfg` goes
    to a [filter] table of a --config file."""
    args = ["replay", "--format", "avr", "--start-time", DELFT_START, *DELFT_SITE]
    if filter_cfg:
        config = tmp_path / "agent.toml"
        config.write_text("[filter]\n" + "".join(f"{k} = {v}\n" for k, v in filter_cfg.items()))
        args += ["--config", str(config)]
    run = subprocess.run(
        [sys.executable, "-m", "agent", *args, str(real["delft-2015"].files[0])],
        capture_output=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in run.stdout.decode().splitlines()]


def test_real_low_mode_s_only_contact_is_reported_with_its_altitude(real, tmp_path):
    """484516 never sends an extended squitter: 6 all-call replies, then DF0/DF20
    altitude replies at 400-500 ft whose address comes from their parity, 9 in 52 s.
    Reported once, on its 5th reply (16:14:21, 27 s after the first), at 500 ft."""
    (event,) = _replay_delft(real, tmp_path)
    assert event["event"] == "unlocated_contact" and event["icao"] == "484516"
    assert event["ts"] == pytest.approx(1425399261.071, abs=0.001)
    assert event["alt_baro_ft"] == 500 and event["agl_ft"] == 500
    assert event["lat"] is None and event["country"] == "NL"
    assert {"mode_s_only", "low"} <= set(event["tags"])
    validate(event)


def test_real_low_mode_s_only_contact_is_judged_by_its_altitude(real, tmp_path):
    """Under a 450 ft ceiling its 500 ft reply is not enough; its next altitude reply, a DF20 at
    400 ft ten seconds later, is. Under 350 ft it is never reported."""
    (event,) = _replay_delft(real, tmp_path, max_height_ft=450)
    assert event["icao"] == "484516" and event["alt_baro_ft"] == 400
    assert event["ts"] == pytest.approx(1425399271.214, abs=0.001)
    assert _replay_delft(real, tmp_path, max_height_ft=350) == []


def test_real_low_mode_s_only_contact_needs_the_short_threshold(real, monkeypatch):
    """9 replies: the old threshold of 20 never reported it."""
    assert [r["icao"] for r in real["delft-2015"].run()[0]] == ["484516"]
    monkeypatch.setattr(agent.intel.events, "UNLOCATED_MIN_MESSAGES", 20)
    assert real["delft-2015"].run()[0] == []


def test_real_mode_s_only_replies_count_only_once_their_address_was_heard(real):
    """DF0/DF20 carry no address of their own (address/parity): without the all-call
    replies that announce 484516, its altitude replies are noise to the address gate."""
    rec = real["delft-2015"]
    frames = [f for f in rec.frames() if not (f.df == 11 and f.msg[1:4].hex() == "484516")]
    cfg = build_config({"site": {"name": rec.name, **rec.site}})
    out = io.StringIO()
    pipeline = Pipeline(cfg, [StdoutPublisher(out)])
    for f in frames:
        pipeline.handle(f)
    pipeline.finish()
    assert out.getvalue() == ""
