"""Records per second through classification and events with 200 simultaneous tracks.

A simulated sky of 200 light aircraft and helicopters low around one site (orbits,
straight legs, climbs and descents) is decoded by the full pipeline twice: with the GA
intelligence stage (height model, places, events) and without it (the reference), so
the ratio shows what the stage costs.

    python -m bench.intel [--aircraft N] [--duration S]
"""

from __future__ import annotations

import argparse
import math
import random
import time

from agent.config import build_config
from agent.pipeline import Pipeline
from agent.sim.scenario import Site, received_frames, replies
from agent.sim.trajectory import Aircraft, FlightPlan, Kinematics, Straight, Turn
from bench.common import peak_rss_mib, pin_to_one_core, time_pipeline

SITE = Site(lat=-14.90, lon=-57.80, elevation_ft=800.0)


def fleet(n: int, seed: int = 3) -> tuple[Aircraft, ...]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r_m, bearing = rng.uniform(2_000, 60_000), rng.uniform(0, 2 * math.pi)
        lat = SITE.lat + math.degrees(r_m * math.cos(bearing) / 6_371_000)
        lon = SITE.lon + math.degrees(
            r_m * math.sin(bearing) / (6_371_000 * math.cos(math.radians(SITE.lat)))
        )
        agl = rng.uniform(200, 2800)
        start = Kinematics(
            lat, lon, SITE.elevation_ft + agl, rng.uniform(60, 160), rng.uniform(0, 360)
        )
        legs = []
        for _ in range(6):
            if rng.random() < 0.5:
                legs.append(Turn(rng.choice((-1, 1)) * rng.uniform(90, 720), rng.uniform(2, 6)))
            else:
                climb = rng.uniform(-500, 500)
                legs.append(Straight(rng.uniform(20, 90), climb_fpm=climb))
        category = "A7" if i % 5 == 0 else "A1"
        out.append(
            Aircraft(
                icao=0xE40000 + i,
                callsign=f"PT{chr(65 + i % 26)}{chr(65 + i // 26 % 26)}X",
                category=category,
                plan=FlightPlan(start, legs),
                gnss_minus_baro_ft=-75.0,
            )
        )
    return tuple(out)


def run(frames, intel: bool) -> tuple[float, Pipeline]:
    cfg = build_config(
        {
            "site": {
                "name": "bench",
                "lat": SITE.lat,
                "lon": SITE.lon,
                "elevation_ft": SITE.elevation_ft,
            },
            "intel": {"events": intel, "aerodromes": intel},
            "filter": {"max_distance_km": 200.0},
        }
    )
    return time_pipeline(cfg, frames)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aircraft", type=int, default=200)
    ap.add_argument("--duration", type=float, default=120.0, help="simulated seconds")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    pin_to_one_core()
    t0 = time.monotonic()
    frames = received_frames(replies(fleet(args.aircraft), args.duration, 1, SITE))
    print(
        f"simulated {args.aircraft} aircraft for {args.duration:g} s: {len(frames)} frames "
        f"(made in {time.monotonic() - t0:.1f} s)"
    )
    ref = min((run(frames, False) for _ in range(args.repeat)), key=lambda r: r[0])
    ours = min((run(frames, True) for _ in range(args.repeat)), key=lambda r: r[0])
    rows = (("without intel (reference)", ref), ("with intel (height, places, events)", ours))
    for label, (cpu, p) in rows:
        s = p.stats()
        records = s.get("pipeline.records_position", 0) + s.get("pipeline.records_event", 0)
        positions = s.get("pipeline.positions_decoded", 0)
        print(
            f"{label:<38} CPU {cpu:6.2f} s  frames/s {len(frames) / cpu:9,.0f}  "
            f"positions classified/s {positions / cpu:8,.0f}  records out {records}"
        )
    print(f"ratio with/without intel: {ours[0] / ref[0]:.2f}x CPU")
    print(
        f"events published: {ours[1].counts['records_event']}; "
        f"simulated seconds per CPU second: {args.duration / ours[0]:.1f}"
    )
    print(f"peak RSS: {peak_rss_mib():.1f} MiB")


if __name__ == "__main__":
    main()
