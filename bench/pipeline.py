"""Frames per second through verify+decode+track+filter+publish-to-stdout on one core.

Input: every real frame in shared/data/opensky and shared/data/messages (DF17 positions,
velocities, identifications and DF20/21 roll-call replies), in time order. Reference:
pyModeS's PipeDecoder alone on the same frames, so the ratio shows what our stages add.

    python -m bench.pipeline [--repeat N]
"""

from __future__ import annotations

import argparse
import csv
import time

from pyModeS import PipeDecoder

from agent.config import build_config
from agent.frame import Frame
from agent.pipeline import Pipeline
from bench.common import peak_rss_mib, pin_to_one_core, shared_data, time_pipeline


def _opensky(name: str) -> list[tuple[float, str]]:
    out = []
    for line in shared_data(f"opensky/{name}").read_text().splitlines():
        cols = line.split("\t")
        try:
            out.append((float(cols[0]), cols[2]))
        except (ValueError, IndexError):
            continue
    return out


def _messages() -> list[tuple[float, str]]:
    out = []
    with shared_data("messages/pms_sample_data_adsb.csv").open() as fh:
        out += [(float(r[0]), r[1]) for r in csv.reader(fh) if r]
    for name in ("pms_sample_data_commb_df20.csv", "pms_sample_data_commb_df21.csv"):
        with shared_data(f"messages/{name}").open(encoding="utf-8-sig") as fh:
            out += [(float(r[0]), r[2]) for r in csv.reader(fh) if r]
    return out


def load_frames() -> list[Frame]:
    rows = _messages()
    for name in (
        "484506_position.tsv",
        "484506_velocity.tsv",
        "484506_identification.tsv",
        "495288_rollcall.tsv",
    ):
        rows += _opensky(name)
    rows.sort()
    return [Frame(bytes.fromhex(h), t, -20.0, "bench") for t, h in rows]


def run_agent(frames: list[Frame], filter_on: bool) -> tuple[float, Pipeline]:
    cfg = build_config({"filter": {"enabled": filter_on}, "limiter": {"enabled": False}})
    return time_pipeline(cfg, frames)


def run_reference(frames: list[Frame]) -> float:
    pipe = PipeDecoder()
    t0 = time.process_time()
    for f in frames:
        pipe.decode(f.hex, timestamp=f.rx_time)
    return time.process_time() - t0


def _report(label: str, frames: list[Frame], repeat: int) -> None:
    ref = min(run_reference(frames) for _ in range(repeat))
    ours_all = min(run_agent(frames, False)[0] for _ in range(repeat))
    runs = [run_agent(frames, True) for _ in range(repeat)]
    ours_ga, pipeline = min(runs, key=lambda r: r[0])
    stats = pipeline.stats()
    n = len(frames)
    accepted = sum(v for k, v in stats.items() if k.startswith("verify.accepted"))
    positions_all = run_agent(frames, False)[1].counts["records_position"]
    positions_ga = stats.get("pipeline.records_position", 0)
    print(f"\n{label}: {n} frames, {accepted} pass the CRC gate")
    print(f"{'run':<44}{'CPU s':>8}{'frames/s':>12}{'vs pyModeS':>12}")
    rows = (
        ("pyModeS PipeDecoder alone (reference)", ref),
        ("agent, filter off (--all)", ours_all),
        ("agent, GA filter on", ours_ga),
    )
    for name, cpu in rows:
        print(f"{name:<44}{cpu:>8.3f}{n / cpu:>12,.0f}{cpu / ref:>12.2f}")
    print(f"position records: filter off {positions_all}, GA filter on {positions_ga}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs; the fastest is reported")
    args = ap.parse_args()
    pin_to_one_core()
    frames = load_frames()
    adsb = [f for f in frames if f.df == 17]
    print("one core; pyModeS decodes every frame it is given, the agent only those that")
    print("pass its CRC gate (DF20/21 of addresses never seen in DF11/17 are rejected)")
    _report("DF17 only", adsb, args.repeat)
    _report("all real frames (DF17 + DF20/21 roll-call)", frames, args.repeat)
    print(f"\npeak RSS: {peak_rss_mib():.1f} MiB")


if __name__ == "__main__":
    main()
