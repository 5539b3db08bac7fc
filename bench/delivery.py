"""Delivery through the outbox to a local mosquitto.

Prints: records/s committed and acknowledged; backlog drain rate after an outage;
bytes on the wire per tracked aircraft-minute with the position limiter on a simulated
low-level GA scenario (target <= 1.5 KB), and how far the track a consumer rebuilds
from the published positions (linear between them) strays from the full-rate track
(target <= 200 m); peak RSS. Reference: the same scenario published at full rate.

    python -m bench.delivery [--records N] [--aircraft N] [--minutes M]
"""

from __future__ import annotations

import argparse
import bisect
import io
import json
import tempfile
import threading
import time
import zlib
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import MqttConfig, build_config
from agent.geo import haversine_km
from agent.outbox import Outbox
from agent.outputs.mqtt import MqttPublisher
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline
from agent.sim.scenario import received_frames, replies
from bench.broker import BenchBroker
from bench.common import peak_rss_mib
from bench.intel import SITE, fleet
from tests.netproxy import CuttableProxy


class Consumer:
    """A central-side subscriber that rebuilds tracks from what arrives."""

    def __init__(self, port: int):
        self.positions: list[dict] = []
        self.messages = 0
        self._lock = threading.Lock()
        c = mqtt.Client(CallbackAPIVersion.VERSION2)
        c.on_connect = lambda cl, *_: cl.subscribe("adsb/v1/#", qos=1)
        c.on_message = self._on
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c
        time.sleep(0.3)

    def _on(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages += 1
            if msg.topic.endswith("/positions"):
                self.positions += json.loads(zlib.decompress(msg.payload))
            elif "/position/" in msg.topic:
                self.positions.append(json.loads(msg.payload))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _record(i: int) -> dict:
    return {
        "v": 1,
        "type": "position",
        "site": "bench",
        "icao": f"E4{i % 200:04X}",
        "ts": 1767225600 + i * 0.01,
        "lat": -15.6 + i * 1e-6,
        "lon": -56.1,
        "alt_baro_ft": 1500,
        "gs_kt": 90.0,
        "track_deg": 270.0,
        "tags": ["low", "light"],
    }


def throughput(broker: BenchBroker, n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        pub = MqttPublisher(
            MqttConfig(url=broker.url, drain_rate=1e5), "bench", Outbox(Path(d) / "o.sqlite")
        ).start()
        pub.wait_connected(10)
        t0, c0 = time.monotonic(), time.process_time()
        for i in range(n):
            pub.publish(_record(i))
        commit_s = time.monotonic() - t0
        pub.flush(300)
        total_s, cpu = time.monotonic() - t0, time.process_time() - c0
        pub.close()
    print(f"commit to the outbox: {n / commit_s:,.0f} records/s ({n} records)")
    print(
        f"committed, published and acknowledged: {n / total_s:,.0f} records/s, "
        f"{cpu / n * 1e6:.0f} us CPU per record (all threads)"
    )


def backlog_drain(broker: BenchBroker, n: int, rate: float) -> None:
    proxy = CuttableProxy(broker.port)
    with tempfile.TemporaryDirectory() as d:
        cfg = MqttConfig(url=f"mqtt://127.0.0.1:{proxy.port}", drain_rate=rate)
        proxy.down = True  # the outage: everything waits in the outbox
        pub = MqttPublisher(cfg, "bench", Outbox(Path(d) / "o.sqlite")).start()
        for i in range(n):
            pub.publish(_record(i))
        proxy.down = False
        pub.wait_connected(30)
        t0 = time.monotonic()
        pub.flush(600)
        dt = time.monotonic() - t0
        pub.close()
    proxy.close()
    print(
        f"backlog of {n} after an outage drained at {n / dt:,.0f} records/s "
        f"(cap drain_rate={rate:g}/s)"
    )


def _config(limiter: bool, url: str | None = None, batch_s: float = 0.0, state: str = "") -> dict:
    data = {
        "site": {
            "name": "bench",
            "lat": SITE.lat,
            "lon": SITE.lon,
            "elevation_ft": SITE.elevation_ft,
        },
        "limiter": {"enabled": limiter},
        "filter": {"max_distance_km": 200.0},
    }
    if url:
        data["mqtt"] = {"url": url, "batch_s": batch_s, "drain_rate": 1e5}
        data["state_dir"] = state
    return data


def full_rate_tracks(frames) -> tuple[dict[str, list[tuple[float, float, float]]], float]:
    out = io.StringIO()
    pipeline = Pipeline(build_config(_config(False)), [StdoutPublisher(out)])
    for f in frames:
        pipeline.handle(f)
    tracks: dict[str, list[tuple[float, float, float]]] = {}
    for line in out.getvalue().splitlines():
        r = json.loads(line)
        if r["type"] == "position":
            tracks.setdefault(r["icao"], []).append((r["ts"], r["lat"], r["lon"]))
    minutes = sum((t[-1][0] - t[0][0]) / 60.0 for t in tracks.values())
    return tracks, minutes


def published(
    broker: BenchBroker, frames, batch_s: float, limiter: bool = True
) -> tuple[int, list[dict], int]:
    proxy = CuttableProxy(broker.port)
    consumer = Consumer(broker.port)
    with tempfile.TemporaryDirectory() as d:
        cfg = build_config(_config(limiter, f"mqtt://127.0.0.1:{proxy.port}", batch_s, d))
        outbox = Outbox(Path(d) / "outbox.sqlite")
        pub = MqttPublisher(cfg.mqtt, "bench", outbox).start()
        pub.wait_connected(10)
        pipeline = Pipeline(cfg, [pub])
        for f in frames:
            pipeline.handle(f)
        pub.flush(120)
        pub.close()
    time.sleep(0.5)
    consumer.close()
    proxy.close()
    return proxy.bytes_up + proxy.bytes_down, consumer.positions, consumer.messages


def track_error_m(full, got: list[dict]) -> list[float]:
    """Distance from each full-rate point to the consumer's track at the same time."""
    sent: dict[str, list[tuple[float, float, float]]] = {}
    for r in got:
        sent.setdefault(r["icao"], []).append((r["ts"], r["lat"], r["lon"]))
    errors = []
    for icao, pts in full.items():
        mine = sorted(sent.get(icao, ()))
        if len(mine) < 2:
            continue
        times = [p[0] for p in mine]
        for t, lat, lon in pts:
            if not times[0] <= t <= times[-1]:
                continue
            i = min(max(bisect.bisect_left(times, t), 1), len(mine) - 1)
            (t0, la0, lo0), (t1, la1, lo1) = mine[i - 1], mine[i]
            w = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
            errors.append(
                haversine_km(lat, lon, la0 + w * (la1 - la0), lo0 + w * (lo1 - lo0)) * 1000
            )
    return sorted(errors)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--backlog", type=int, default=5000)
    ap.add_argument("--aircraft", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    broker = BenchBroker()
    try:
        throughput(broker, args.records)
        backlog_drain(broker, args.backlog, 1000.0)
        frames = received_frames(replies(fleet(args.aircraft), args.minutes * 60, 1, SITE))
        full, minutes = full_rate_tracks(frames)
        full_points = sum(len(t) for t in full.values())
        print(
            f"scenario: {args.aircraft} light aircraft low around one site, {args.minutes:g} min, "
            f"{len(frames)} frames, {minutes:.1f} tracked aircraft-minutes, "
            f"{full_points} full-rate positions"
        )
        print(
            f"{'publishing':<34}{'messages':>9}{'positions':>10}{'bytes/ac-min':>13}"
            f"{'max err m':>10}{'p95 err m':>10}"
        )
        runs = (
            ("full rate, one message each (ref)", 0.0, False),
            ("limiter, one message each", 0.0, True),
            ("limiter, batched 30 s", 30.0, True),
        )
        for label, batch, limiter in runs:
            wire, got, messages = published(broker, frames, batch, limiter)
            err = track_error_m(full, got)
            p95 = err[int(0.95 * (len(err) - 1))] if err else float("nan")
            print(
                f"{label:<34}{messages:>9}{len(got):>10}{wire / minutes:>13,.0f}"
                f"{(err[-1] if err else float('nan')):>10.0f}{p95:>10.0f}"
            )
    finally:
        broker.stop()
    print(f"peak RSS: {peak_rss_mib():.1f} MiB")


if __name__ == "__main__":
    main()
