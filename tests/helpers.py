"""Readers for the real recordings in shared/data (formats in shared/REFERENCE.md)."""

from __future__ import annotations

import csv
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from agent.frame import Frame
from agent.track import Aircraft

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


def located_aircraft(i: int, **fields: Any) -> Aircraft:
    """Aircraft number `i` (address E4nnnn) with a position near Cuiaba, `i` s into 2026."""
    t = 1_767_225_600.0 + i
    base: dict[str, Any] = {
        "icao": f"E4{i:04X}",
        "first_seen": 1_767_225_600.0,
        "last_seen": t,
        "messages": 1,
        "lat": -15.6,
        "lon": -56.1,
        "position_time": t,
        "position_source": "cpr_local",
        "alt_baro_ft": 1200,
    }
    return Aircraft(**(base | fields))


def strip_aircraft(i: int) -> Aircraft:
    """Light aircraft number `i` (address E48Ann) over the strip, with everything a
    position record carries: the sample records of the publishing tests."""
    return Aircraft(
        icao=f"E48A{i:02X}",
        first_seen=1_767_225_600.0,
        last_seen=1_767_225_601.0 + i,
        country="BR",
        messages=10 + i,
        lat=-15.61,
        lon=-56.11,
        position_time=1_767_225_601.0 + i,
        position_source="cpr_local",
        alt_baro_ft=1500,
        category="A1",
        callsign="PTABC",
        gs_kt=90.0,
        track_deg=270.0,
    )


class LogLines(logging.Handler):
    """Messages logged on one logger, whatever the global logging set-up."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class SourceRunner:
    """Iterates a source's frames(stop) in a thread, as the pipeline does.

    Errors raised by frames() are kept and fail the next wait_for() or finish().
    """

    def __init__(self, source: Any, *, per_frame: Callable[[], None] | None = None):
        self.source = source
        self.stop = threading.Event()
        self.frames: list[Frame] = []
        self.per_frame = per_frame
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for f in self.source.frames(self.stop):
                self.frames.append(f)
                if self.per_frame is not None:
                    self.per_frame()
        except BaseException as err:
            self.error = err

    def wait_for(self, cond: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"timed out; counts {dict(self.source.counts)}"
            time.sleep(0.01)

    def finish(self, timeout: float = 5.0) -> float:
        """Set stop; return how long frames() took to return."""
        t0 = time.monotonic()
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "frames() did not return after stop"
        assert self.error is None, self.error
        return time.monotonic() - t0


def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `pred` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


class TcpServer:
    """A real listening socket on 127.0.0.1 and its accept loop, for scripted peers.

    `handle(conn)` serves each accepted connection (it owns `conn`): in the accept
    thread, one at a time, or with `threaded=True` each in a thread of its own (peers
    that serve several clients at once: a feed, a proxy). The loop looks at `stopping`
    at least every `poll_s`, so close() returns promptly. A handler that streams should
    watch `stopping` too.
    """

    def __init__(
        self,
        handle: Callable[[socket.socket], None],
        *,
        port: int = 0,
        poll_s: float = 0.05,
        name: str = "tcp-server",
        threaded: bool = False,
    ):
        self.handle = handle
        self.threaded = threaded
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(poll_s)
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> TcpServer:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed
                return
            self.accepted += 1
            if self.threaded:
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()
            else:
                self.handle(conn)

    def close(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.listener.close()


def demodulate(raw: bytes, rate: float, block: int = 262144) -> list[Frame]:
    """Frames of raw IQ bytes fed as the sources do: in UC8 blocks (I/Q too at 2.0 MS/s)."""
    from agent.demod import Demodulator  # numpy: only for the tests that demodulate

    demod = Demodulator(rate)
    out: list[Frame] = []
    for i in range(0, len(raw), 2 * block):
        out += demod.process_raw(raw[i : i + 2 * block])
    return out + demod.flush()
