"""Alerts against hand labels: public real recordings and the simulator's scenarios.

Per recording: aircraft selected, airliners (or any aircraft labelled must-never)
selected (must be 0), events by kind, and false / missed events against the labels
(tests/data/real/labels.json for the real ones, each scenario's truth for the
simulated ones). The real recordings are replayed with their own UTC receive times.

    python bench/alerts.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.real import SCORED, recordings, score
from tests.scenarios import ALL

_LARGE = frozenset(("A3", "A4", "A5", "A6"))


def _row(kind: str, name: str, selected: int, never: int, events: Counter[str], false, missed):
    shown = " ".join(f"{k}={events[k]}" for k in SCORED if events[k]) or "-"
    print(
        f"{kind:<5} {name:<18} {selected:>8} {never:>8}  {shown:<44} "
        f"{', '.join(false) or '-':<28} {', '.join(missed) or '-'}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.environ.get("ADSB_AGENT_SHARED", "../shared"))
    args = ap.parse_args()
    print(
        f"{'kind':<5} {'recording':<18} {'selected':>8} {'never*':>8}  "
        f"{'events (beside track_start/end)':<44} {'false':<28} missed"
    )
    for rec in recordings(Path(args.shared)):
        if not all(f.exists() for f in rec.files):
            print(f"real  {rec.name:<18} (missing: {', '.join(map(str, rec.files))})")
            continue
        records, _ = rec.run()
        s = score(rec, records)
        _row("real", rec.name, len(s.selected), len(s.never_selected), s.events, s.false, s.missed)
    for make in ALL:
        scenario = make()
        records, _ = scenario.run()
        selected = {r["icao"] for r in records}
        large = {a.icao_hex for a in scenario.fleet if a.category in _LARGE}
        events = Counter(r["event"] for r in records if r["type"] == "event")
        false = [f"{k} x{events[k]}" for k in SCORED if events[k] and k not in scenario.truth]
        false += [f"{k} x{events[k] - 1}" for k in scenario.truth if events[k] > 1]
        missed = [k for k in sorted(scenario.truth) if not events[k]]
        _row("sim", scenario.name, len(selected), len(selected & large), events, false, missed)
    print("* must-never selected: labelled airliners (real), large categories (sim); must be 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
