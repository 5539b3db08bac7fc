"""A Beast TCP server that plays the demo scenario's received frames at the pace of the
air (times `speed`), looping: a live feed for tests and benchmarks that need an agent
with aircraft coming and going (the shared Beast recording arrives in one burst).

The Beast source times frames by its own wall clock, so the agent sees a live sky.
"""

from __future__ import annotations

import socket
import threading
import time

from agent.frame import Frame
from tests.helpers import TcpServer

ESC = b"\x1a"


def beast_record(frame: Frame, ticks: int) -> bytes:
    """One Beast record (type '2' short or '3' long) with 0x1a doubled after the type."""
    kind = b"2" if len(frame.msg) == 7 else b"3"
    level = 0 if frame.signal_dbfs is None else round(255 * 10 ** (frame.signal_dbfs / 20))
    body = ticks.to_bytes(6, "big") + bytes([max(1, min(level, 255))]) + frame.msg
    return ESC + kind + body.replace(ESC, ESC + ESC)


class DemoBeastFeed:
    """Serves `frames` (sorted by rx_time) to one client at a time, paced, in a loop.

    Args:
        frames: what to play (agent.sim.scenario.demo_frames()[0]).
        speed: 1.0 is the pace of the air.
        loop: start again at the end (a sky that never empties).
    """

    def __init__(self, frames: list[Frame], *, speed: float = 1.0, loop: bool = True):
        self.frames = frames
        self.speed = speed
        self.loop = loop
        self.sent = 0
        self.server = TcpServer(self._serve, name="demo-beast-feed")
        self.port = self.server.port

    def start(self) -> DemoBeastFeed:
        self.server.start()
        return self

    def _serve(self, conn: socket.socket) -> None:
        threading.Thread(target=self._play, args=(conn,), daemon=True).start()

    def _play(self, conn: socket.socket) -> None:
        try:
            with conn:
                while not self.server.stopping.is_set():
                    self._play_once(conn)
                    if not self.loop:
                        self.server.stopping.wait()
        except OSError:
            return  # the agent went away

    def _play_once(self, conn: socket.socket) -> None:
        t0 = self.frames[0].rx_time
        started = time.monotonic()
        batch: list[bytes] = []
        for f in self.frames:
            due = started + (f.rx_time - t0) / self.speed
            wait = due - time.monotonic()
            if wait > 0.02:
                if batch:
                    conn.sendall(b"".join(batch))
                    batch.clear()
                if self.server.stopping.wait(wait):
                    return
            ticks = int((f.rx_time - t0) * 12e6) & 0xFFFFFFFFFFFF
            batch.append(beast_record(f, ticks))
            self.sent += 1
        if batch:
            conn.sendall(b"".join(batch))

    def close(self) -> None:
        self.server.close()
