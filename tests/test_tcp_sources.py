"""Beast/AVR network sources against real TCP servers on 127.0.0.1 (no mocks).

Each test server is a thread with a listening socket that plays a script: what to send
on the 1st, 2nd, ... connection, then whether to hang up. The client side runs the
source's frames() in a thread exactly as run_sources does.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from agent.sources import open_source
from agent.sources.avr import AvrTcpSource
from agent.sources.beast import BeastDecoder, BeastTcpSource
from agent.sources.tcp import TcpStream
from tests.conftest import free_port, shared_data
from tests.helpers import SourceRunner, TcpServer

# Fast retries so reconnect tests take fractions of a second.
FAST = {"backoff_min": 0.05, "backoff_max": 0.2, "read_timeout": 0.1, "connect_timeout": 1.0}
HOLD = None  # script entry: keep the connection open, send nothing, until the server stops


def _recording() -> bytes:
    return shared_data("beast/traffic_sample_dump1090.bin").read_bytes()


def _msgs(data: bytes) -> list[bytes]:
    return [f.msg for f in BeastDecoder(start_time=0.0).feed(data)]


class ScriptedServer:
    """Serves script[n] to the n-th connection, then closes it; later ones are held."""

    def __init__(self, script: list[bytes | None], port: int = 0):
        self.script = list(script)
        self._held: list[socket.socket] = []
        self._server = TcpServer(self._serve, port=port, name="scripted-server")
        self.port = self._server.port

    @property
    def accepted(self) -> int:
        return self._server.accepted

    def __enter__(self) -> ScriptedServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        for conn in self._held:
            conn.close()

    def _serve(self, conn: socket.socket) -> None:
        payload = self.script.pop(0) if self.script else HOLD
        if payload is HOLD:
            self._held.append(conn)
            return
        with conn:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)


@contextmanager
def collecting(src: BeastTcpSource | AvrTcpSource) -> Iterator[SourceRunner]:
    c = SourceRunner(src)
    try:
        yield c
    finally:
        c.finish()


def test_reconnects_after_the_server_hangs_up_and_gets_the_frames_again():
    data = _recording()
    with ScriptedServer([data, data]) as server:
        src = BeastTcpSource("127.0.0.1", server.port, **FAST)
        with collecting(src) as c:
            c.wait_for(lambda: len(c.frames) >= 2 * 239 and src.counts["connects"] >= 3)
        assert [f.msg for f in c.frames] == _msgs(data) * 2
        assert src.counts["frames"] == 478
        assert src.counts["disconnects"] == 2
        assert src.name == f"beast://127.0.0.1:{server.port}"
        assert all(f.source == src.name for f in c.frames)


def test_live_frames_are_timed_by_the_clock():
    with ScriptedServer([_recording()]) as server:
        src = BeastTcpSource("127.0.0.1", server.port, clock=lambda: 42.0, **FAST)
        with collecting(src) as c:
            c.wait_for(lambda: len(c.frames) == 239)
        assert {f.rx_time for f in c.frames} == {42.0}
        assert c.frames[0].ticks_12mhz is not None


def test_server_not_up_at_start(caplog):
    caplog.set_level(logging.DEBUG, logger="agent.sources.tcp")
    port = free_port()
    src = BeastTcpSource("127.0.0.1", port, **FAST)
    with collecting(src) as c:
        c.wait_for(lambda: src.counts["connect_failed"] >= 3)
        with ScriptedServer([_recording()], port=port):
            c.wait_for(lambda: len(c.frames) == 239)
    assert src.counts["connects"] >= 1
    tcp = [r for r in caplog.records if r.name == "agent.sources.tcp"]
    warnings = [r for r in tcp if r.levelno == logging.WARNING]
    infos = [r for r in tcp if r.levelno == logging.INFO]
    # First failure and the recovery are logged; the retries in between only at debug.
    assert len(warnings) >= 1 and "cannot connect" in warnings[0].getMessage()
    assert "connected again" in infos[0].getMessage()
    assert warnings[0].created < infos[0].created
    failed_before_up = [r for r in tcp if r.created < infos[0].created]
    assert sum(r.levelno >= logging.WARNING for r in failed_before_up) == 1


def test_half_a_frame_then_drop_is_not_glued_to_the_next_connection():
    data = _recording()
    # Cut right after the first byte of an escaped 0x1a inside a record: glued to the
    # next connection's leading 0x1a it would read as a data byte and make a bogus frame.
    cut = data.index(b"\x1a\x1a") + 1
    complete = _msgs(data[:cut])
    with ScriptedServer([data[:cut], data]) as server:
        src = BeastTcpSource("127.0.0.1", server.port, **FAST)
        with collecting(src) as c:
            c.wait_for(lambda: len(c.frames) >= len(complete) + 239)
        assert [f.msg for f in c.frames] == complete + _msgs(data)
        assert src.counts["beast_partial_dropped"] == 1
        assert "beast_resync" not in src.counts


def test_without_the_reset_that_cut_would_glue():
    """Shows the previous test is sharp: the same bytes on one stream do go wrong."""
    data = _recording()
    cut = data.index(b"\x1a\x1a") + 1
    assert _msgs(data[:cut] + data) != _msgs(data[:cut]) + _msgs(data)


def test_avr_source_reconnects_and_drops_half_lines():
    df17, df11 = "8D48520AF82300060049B898BA5F", "5D4D20237A55AF"
    lines = f"*{df17};\r\n*{df11};\r\n".encode()
    with ScriptedServer([lines + b"*8D4852", lines]) as server:
        src = open_source(f"avr://127.0.0.1:{server.port}")
        assert isinstance(src, AvrTcpSource)
        with collecting(src) as c:
            c.wait_for(lambda: len(c.frames) >= 4)
        assert [f.hex for f in c.frames] == [df17, df11, df17, df11]
        assert src.counts["avr_partial_dropped"] == 1
        assert src.counts["disconnects"] >= 1


def _stops_fast(src: BeastTcpSource, key: str) -> None:
    c = SourceRunner(src)
    c.wait_for(lambda: src.counts[key] >= 1)
    time.sleep(0.2)
    assert c.finish() < 1.0


def test_stop_ends_frames_within_a_second_while_connected_and_idle():
    with ScriptedServer([HOLD]) as server:
        # default read timeout (0.5 s); a long backoff must not matter either
        _stops_fast(BeastTcpSource("127.0.0.1", server.port, backoff_min=10.0), "connects")


def test_stop_ends_frames_within_a_second_while_backing_off():
    src = BeastTcpSource("127.0.0.1", free_port(), backoff_min=10.0, backoff_max=30.0)
    _stops_fast(src, "connect_failed")


def test_backoff_grows_with_jitter_up_to_the_cap():
    stream = TcpStream("127.0.0.1", 1, threading.Event(), backoff_min=0.5, backoff_max=30)
    for failures, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (200, 30.0)):
        waits = [stream._backoff(failures) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1


def test_bad_timing_is_refused():
    with pytest.raises(ValueError):
        TcpStream("127.0.0.1", 1, threading.Event(), backoff_min=5, backoff_max=1)
