"""Readers for the real recordings in shared/data (formats in shared/REFERENCE.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import jsonschema

from agent.frame import Frame

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "agent" / "data" / "adsb-v1.schema.json").read_text())


def opensky_frames(*paths: Path) -> list[Frame]:
    """OpenSky TSV exports: `mintime maxtime rawmsg ...`; the query echo lines are skipped."""
    frames = []
    for path in paths:
        for line in path.read_text().splitlines():
            cols = line.split("\t")
            try:
                t = float(cols[0])
                msg = bytes.fromhex(cols[2])
            except (ValueError, IndexError):
                continue
            frames.append(Frame(msg, t))
    frames.sort(key=lambda f: f.rx_time)
    return frames


def pms_adsb_frames(path: Path) -> list[Frame]:
    """pyModeS sample: `unix_s,"hex",icao,typecode` rows."""
    with path.open() as fh:
        return [Frame(bytes.fromhex(r[1]), float(r[0])) for r in csv.reader(fh) if r]


def validate(record: dict[str, Any]) -> None:
    """Raise if `record` does not follow agent/data/adsb-v1.schema.json."""
    jsonschema.validate(record, SCHEMA)
