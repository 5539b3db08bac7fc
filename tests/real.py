"""Public real recordings with hand labels (tests/data/real), replayed through the
whole pipeline: the evaluation of the alerts on real traffic (issue 13).

Each recording is read into Frames with the recording's own receive times (UTC):
Beast and AVR through the agent's own decoders started at the publisher's UTC start
time, `unix_seconds,hex` logs and pyModeS's Comm-B samples line by line. No new
source format: the frames go straight to `Pipeline.handle`.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import build_config
from agent.frame import Frame
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline
from agent.sources.avr import AvrDecoder
from agent.sources.beast import BeastDecoder

DATA = Path(__file__).resolve().parent / "data" / "real"
# Events scored against the labels (track_start/track_end are selections, counted apart).
SCORED = (
    "landing",
    "takeoff",
    "low_pass",
    "loiter",
    "lost_low",
    "night_flight",
    "unlocated_contact",
)


@dataclass
class Recording:
    name: str
    files: list[Path]
    format: str
    start_utc: float
    site: dict
    low_ga: set[str]
    never: set[str]
    events: dict[str, list[str]]
    never_events: set[str]
    notes: dict = field(default_factory=dict)

    def frames(self) -> list[Frame]:
        if self.format in ("beast", "avr"):
            kind = BeastDecoder if self.format == "beast" else AvrDecoder
            decoder = kind(self.name, start_time=self.start_utc)
            return decoder.feed(self.files[0].read_bytes()) + decoder.finish()
        out: list[Frame] = []
        for path in self.files:
            for line in path.read_text(encoding="utf-8-sig").splitlines():
                parts = [p.strip().strip('"') for p in line.split(",")]
                if self.format == "csv":
                    out.append(Frame(bytes.fromhex(parts[1]), float(parts[0]), None, self.name))
                else:  # commb: unix_s,icao,hex; the publisher attributed each reply
                    # to its address already (DF20/21 parity is address-overlaid), and
                    # no DF11/17 of these aircraft is in the file to pass the address gate.
                    msg = bytes.fromhex(parts[2])
                    out.append(Frame(msg, float(parts[0]), None, self.name, accepted=True))
        out.sort(key=lambda f: f.rx_time)
        return out

    def run(self, **config: dict) -> tuple[list[dict], Pipeline]:
        """Every record the agent publishes for this recording (filter on unless the
        config says otherwise), and the pipeline for its counters."""
        site = {"name": self.name, **self.site}
        cfg = build_config({"site": site, **config})
        out = io.StringIO()
        pipeline = Pipeline(cfg, [StdoutPublisher(out)])
        for frame in self.frames():
            pipeline.handle(frame)
        pipeline.finish()
        return [json.loads(line) for line in out.getvalue().splitlines()], pipeline


def recordings(shared: Path) -> list[Recording]:
    """The labelled recordings; `shared:` paths are under `shared`/data."""
    labels = json.loads((DATA / "labels.json").read_text())
    out = []
    for r in labels["recordings"]:
        files = [
            shared / "data" / f.removeprefix("shared:") if f.startswith("shared:") else DATA / f
            for f in r["file"]
        ]
        out.append(
            Recording(
                r["name"],
                files,
                r["format"],
                r["start_utc"],
                r["site"],
                set(r["low_ga"]),
                set(r["never"]),
                r["events"],
                set(r["never_events"]),
                r.get("notes", {}),
            )
        )
    return out


@dataclass
class Score:
    """What a replay published against the labels."""

    selected: set[str]
    never_selected: set[str]  # labelled must-never that were selected anyway
    events: Counter[str]
    false: list[str]  # "KIND ICAO" published but not labelled
    missed: list[str]  # labelled but not published


def score(rec: Recording, records: list[dict]) -> Score:
    selected = {r["icao"] for r in records if r["type"] == "position"} | {
        r["icao"] for r in records if r["type"] == "event"
    }
    events = Counter(r["event"] for r in records if r["type"] == "event")
    seen = {(r["event"], r["icao"]) for r in records if r["type"] == "event"}
    want = {(kind, icao) for icao, kinds in rec.events.items() for kind in kinds}
    false = sorted(
        f"{kind} {icao}" for kind, icao in seen if kind in SCORED and (kind, icao) not in want
    )
    missed = sorted(f"{kind} {icao}" for kind, icao in want - seen)
    return Score(selected, selected & rec.never, events, false, missed)
