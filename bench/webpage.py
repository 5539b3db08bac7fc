"""Benchmark: what the technician's page costs the agent, and what a wrong password costs.

    python bench/webpage.py [--seconds 30] [--speed 10] [--pages 3]

1. CPU: `adsb-agent run` as a process, fed the demo scenario over a real Beast TCP
   socket (tests/beast_feed.py) at `--speed` times the pace of the air, looping, with
   the page on a LAN bind (0.0.0.0, a password, as at a strip). Its CPU time
   (/proc/PID/stat utime+stime) is read over `--seconds` with no page open, then with
   `--pages` pages open, then with none again (the two quiet runs show the drift). A
   "page" here is a client doing what app.js does: the page and its assets, /api/map,
   /api/coverage, /api/history, then the event stream read as it comes, /api/history
   every 30 s and /api/coverage every 60 s, with Basic credentials.
2. Password timing: Gate.allows in-process (median of many calls) for the right
   password, a wrong one of the same length differing in the last byte, one differing
   in the first byte, a longer and a shorter one, and none; then the same over HTTP
   against the running agent (median and spread of interleaved requests). The check
   hashes what is offered and compares two 32-byte digests with hmac.compare_digest,
   so the figures should agree within noise.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.outputs.web.auth import Gate  # noqa: E402
from agent.sim import scenario  # noqa: E402
from tests.beast_feed import DemoBeastFeed  # noqa: E402
from tests.conftest import free_port, wait_port  # noqa: E402

PASSWORD = "bench-password-0123456789"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"tech:{password}".encode()).decode()


class Page(threading.Thread):
    """One open page, as app.js behaves."""

    def __init__(self, port: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.stop, self.bytes = port, stop, 0
        self.auth = {"Authorization": basic(PASSWORD)}

    def get(self, path: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", path, headers=self.auth)
        self.bytes += len(conn.getresponse().read())
        conn.close()

    def run(self) -> None:
        for path in ("/", "/style.css", "/app.js", "/api/map", "/api/coverage", "/api/history"):
            self.get(path)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", "/api/stream", headers=self.auth)
        resp = conn.getresponse()
        next_history, next_coverage = time.monotonic() + 30, time.monotonic() + 60
        while not self.stop.is_set():
            self.bytes += len(resp.read1(65536))
            now = time.monotonic()
            if now >= next_history:
                next_history = now + 30
                self.get("/api/history")
            if now >= next_coverage:
                next_coverage = now + 60
                self.get("/api/coverage")
        conn.close()


def measure(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def gate_timing(calls: int) -> dict[str, float]:
    gate = Gate(PASSWORD.encode())
    offers = {
        "right": basic(PASSWORD),
        "wrong last byte": basic(PASSWORD[:-1] + "X"),
        "wrong first byte": basic("X" + PASSWORD[1:]),
        "longer": basic(PASSWORD + "-and-more"),
        "shorter": basic(PASSWORD[:5]),
        "none": None,
    }
    samples: dict[str, list[float]] = {k: [] for k in offers}
    for _ in range(calls // 100):
        for name, offer in offers.items():  # interleaved: drift hits every kind alike
            t0 = time.perf_counter_ns()
            for _ in range(100):
                gate.allows(offer)
            samples[name].append((time.perf_counter_ns() - t0) / 100)
    return {k: statistics.median(v) for k, v in samples.items()}


def http_timing(port: int, rounds: int) -> dict[str, tuple[float, float]]:
    offers = {"right": basic(PASSWORD), "wrong": basic(PASSWORD[:-1] + "X"), "none": None}
    samples: dict[str, list[float]] = {k: [] for k in offers}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(rounds):
        for name, offer in offers.items():
            headers = {"Authorization": offer} if offer else {}
            t0 = time.perf_counter()
            # /style.css: the cheapest answer, so the check is most of what is timed.
            conn.request("GET", "/style.css", headers=headers)
            conn.getresponse().read()
            samples[name].append((time.perf_counter() - t0) * 1e6)
    conn.close()
    out = {}
    for k, v in samples.items():
        q = statistics.quantiles(v, n=4)
        out[k] = (statistics.median(v), q[2] - q[0])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--speed", type=float, default=10.0, help="times the pace of the air")
    ap.add_argument("--pages", type=int, default=3)
    args = ap.parse_args()

    frames, _ = scenario.demo_frames(duration_s=300.0)
    feed = DemoBeastFeed(frames, speed=args.speed).start()
    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    secret = work / "http-password"
    secret.write_text(PASSWORD + "\n")
    cfg = work / "agent.toml"
    cfg.write_text(
        f'[site]\nname = "bench"\nlat = {scenario.SITE_LAT}\nlon = {scenario.SITE_LON}\n'
        f"elevation_ft = {scenario.SITE_ELEVATION_FT}\n"
        f'[http]\npassword_file = "{secret}"\n'
    )
    port = free_port()
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--config", str(cfg), "--state-dir",
         str(work / "state"), "--source", f"beast://127.0.0.1:{feed.port}",
         "--http-port", str(port), "--http-bind", "0.0.0.0"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port)
        time.sleep(5)  # the pipeline warms up (imports, aerodromes, first tracks)
        print(f"feed: demo scenario at {args.speed:g}x the pace of the air, looping; "
              f"agent pid {agent.pid}; {args.seconds:g} s per run")  # fmt: skip
        quiet1 = measure(agent.pid, args.seconds)
        stop = threading.Event()
        pages = [Page(port, stop) for _ in range(args.pages)]
        for p in pages:
            p.start()
        busy = measure(agent.pid, args.seconds)
        stop.set()
        for p in pages:
            p.join(5)
        quiet2 = measure(agent.pid, args.seconds)
        sent = sum(p.bytes for p in pages)
        print(f"frames sent by the feed: {feed.sent}")
        print(f"agent CPU, no page:          {quiet1 * 100:6.2f} % of one core")
        print(f"agent CPU, {args.pages} pages open:     {busy * 100:6.2f} % of one core "
              f"({sent / args.seconds / 1024:.1f} KiB/s to the pages)")  # fmt: skip
        print(f"agent CPU, no page again:    {quiet2 * 100:6.2f} % of one core")
        base = (quiet1 + quiet2) / 2
        print(f"cost of {args.pages} pages: {(busy - base) * 100:+.2f} points of one core")
        print()
        print("password check in-process, median ns per Gate.allows():")
        for name, ns in gate_timing(20000).items():
            print(f"  {name:<18} {ns:8.0f}")
        print("password check over HTTP (GET /style.css), median and IQR in us:")
        for name, (med, iqr) in http_timing(port, 600).items():
            print(f"  {name:<18} {med:8.0f}  IQR {iqr:6.0f}")
    finally:
        agent.terminate()
        agent.wait(10)
        feed.close()


if __name__ == "__main__":
    main()
