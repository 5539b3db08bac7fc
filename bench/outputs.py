"""CPU per frame of the raw feeds (Beast, AVR, SBS) and the JSON files, beside the
pipeline alone.

Input: the shared Beast recording replayed in-process many times over (each pass
shifted in time so tracks end between passes), filter off. Three runs on the same
frames: the pipeline alone; with every feed and the JSON writer configured but no
client connected (encoding is skipped then); with 10 clients on each of the Beast,
AVR and SBS ports reading everything. The clients run in a child process, so the
figures are the agent's CPU only: the pipeline thread plus the net-server and
json-writer threads (process CPU time, until the outputs are closed and every byte
handed to the sockets).

    python bench/outputs.py [--passes N]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import build_config
from agent.frame import Frame
from agent.outputs.net import build_net_outputs
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline
from agent.sources import open_file_source
from bench.common import shared_data

CLIENTS_PER_PORT = 10
# The client process: connect to every port given, say so, read until every socket ends.
_CLIENTS = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector()
total = 0
for port in map(int, sys.argv[1:]):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while sel.get_map():
    for key, _ in sel.select():
        data = key.fileobj.recv(1 << 16)
        if data:
            total += len(data)
        else:
            sel.unregister(key.fileobj)
            key.fileobj.close()
print(total, flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_frames(passes: int) -> list[Frame]:
    src = open_file_source(
        str(shared_data("beast/traffic_sample_dump1090.bin")), "beast", start_time=1.7e9
    )
    base = list(src.frames(threading.Event()))
    return [
        dataclasses.replace(f, rx_time=f.rx_time + k * 120.0) for k in range(passes) for f in base
    ]


def run(frames: list[Frame], net: dict | None, clients: int) -> tuple[float, int, int]:
    """CPU seconds for the pipeline (and outputs) to take every frame, the bytes the
    clients received and how many clients were dropped."""
    doc: dict = {"filter": {"enabled": False}, "limiter": {"enabled": False}}
    if net is not None:
        doc["net"] = net
    cfg = build_config(doc)
    pipeline = Pipeline(cfg, [StdoutPublisher(io.StringIO())])
    outputs = build_net_outputs(
        cfg, aircraft=pipeline.tracker.aircraft.values, selected=pipeline.selections.__contains__
    )
    pipeline.publishers += [out.start() for out in outputs]
    child = None
    if clients:
        ports = [net[k] for k in ("bo_port", "ro_port", "sbs_port")] * clients
        child = subprocess.Popen(
            [sys.executable, "-c", _CLIENTS, *map(str, ports)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        feeds = [f for o in outputs for f in getattr(getattr(o, "server", None), "feeds", [])]
        deadline = time.monotonic() + 10
        while sum(f.clients for f in feeds) < len(ports) and time.monotonic() < deadline:
            time.sleep(0.01)
    t0 = time.process_time()
    for f in frames:
        pipeline.handle(f)
    pipeline.finish()
    for out in pipeline.publishers:
        out.close()
    cpu = time.process_time() - t0
    dropped = sum(o.counts["clients_dropped_slow"] for o in outputs)
    received = 0
    if child is not None:
        out, _ = child.communicate(timeout=60)
        received = int(out.split()[-1])
    return cpu, received, dropped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=200, help="times the recording is replayed")
    args = ap.parse_args()
    frames = load_frames(args.passes)
    n = len(frames)
    with tempfile.TemporaryDirectory() as tmp:
        net = {
            "bo_port": _free_port(),
            "ro_port": _free_port(),
            "sbs_port": _free_port(),
            "json_dir": str(Path(tmp) / "json"),
            # Replayed far faster than live: let no client fall behind enough to be
            # dropped (a dropped client would make the run cheaper, not dearer).
            "client_buffer_kb": 65536,
        }
        # Best of three each: the first run also warms caches and imports.
        alone = min(run(frames, None, 0)[0] for _ in range(3))
        idle = min(run(frames, net, 0)[0] for _ in range(3))
        busy, received, dropped = min(run(frames, net, CLIENTS_PER_PORT) for _ in range(3))
    print(f"{n} frames (the Beast recording x {args.passes}), filter off; best of 3")
    rows = (
        ("pipeline alone", alone, ""),
        ("+ Beast, AVR, SBS ports, JSON, no client", idle, ""),
        (
            f"+ {CLIENTS_PER_PORT} clients on each port (30)",
            busy,
            f", {received / 1e6:.1f} MB delivered, {dropped} clients dropped",
        ),
    )
    for name, cpu, extra in rows:
        added = (
            ""
            if cpu is alone
            else f"  (outputs {(cpu - alone) / n * 1e6:+.1f} us, x{cpu / alone:.2f})"
        )
        print(f"{name:<42} {cpu / n * 1e6:6.1f} us CPU/frame{added}{extra}")


if __name__ == "__main__":
    main()
