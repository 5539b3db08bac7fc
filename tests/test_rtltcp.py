"""rtl_tcp source against an rtl_tcp server written here (real TCP socket, real recording).

The server speaks the osmocom protocol: a 12-byte header (b"RTL0", tuner type, gain
count), then UC8 samples paced at the sample rate; it records every 5-byte command it
receives, per connection, so the tests can check the exact command sequence.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.frame import Frame
from agent.sources import open_source
from agent.sources.iq import IqFileSource
from agent.sources.rtltcp import RtlTcpSource
from agent.sources.tuner import TunerOptions
from tests.conftest import shared_data
from tests.helpers import TcpServer

RECORDING = "iq/modes1_2400.uc8"
CHUNK = 65536
SILENCE = bytes([127, 128]) * (CHUNK // 2)


class RtlTcpServer:
    """A minimal rtl_tcp: one client at a time, the recording then silence.

    Args:
        data: UC8 bytes served after the header on every connection.
        header: what is sent first (a wrong magic makes a non-rtl_tcp server).
        close_after_data: hang up once the recording has been sent (a server restart).
        rate: pacing in bytes per second (2 bytes per sample).
    """

    def __init__(
        self,
        data: bytes,
        *,
        header: bytes = b"RTL0" + struct.pack(">II", 5, 29),
        close_after_data: bool = False,
        rate: float = 2.4e6 * 2,
    ):
        self.data = data
        self.header = header
        self.close_after_data = close_after_data
        self.rate = rate
        self.connections: list[list[tuple[int, int]]] = []
        self.server = TcpServer(self._serve, poll_s=0.2, name="rtl_tcp")
        self.port = self.server.port
        self.stop = self.server.stopping
        self.server.start()

    def _serve(self, conn: socket.socket) -> None:
        commands: list[tuple[int, int]] = []
        self.connections.append(commands)
        reader = threading.Thread(target=self._commands, args=(conn, commands), daemon=True)
        reader.start()
        try:
            self._stream(conn)
        except OSError:
            pass
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes the command reader, sends FIN
            except OSError:
                pass
            reader.join(2)
            conn.close()

    def _commands(self, conn: socket.socket, out: list[tuple[int, int]]) -> None:
        buf = b""
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while len(buf) >= 5:
                out.append(struct.unpack(">BI", buf[:5]))
                buf = buf[5:]

    def _stream(self, conn: socket.socket) -> None:
        conn.sendall(self.header)
        t0, sent = time.monotonic(), 0
        while not self.stop.is_set():
            if sent < len(self.data):
                chunk = self.data[sent : sent + CHUNK]
            elif self.close_after_data:
                return
            else:
                chunk = SILENCE
            conn.sendall(chunk)
            sent += len(chunk)
            ahead = t0 + sent / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def recording() -> bytes:
    return shared_data(RECORDING).read_bytes()


@pytest.fixture(scope="module")
def reference() -> list[str]:
    src = IqFileSource(str(shared_data(RECORDING)), rate=2.4e6, fmt="uc8")
    return [f.hex for f in src.frames(threading.Event())]


@pytest.fixture
def server_factory() -> Iterator[Callable[..., RtlTcpServer]]:
    servers: list[RtlTcpServer] = []

    def make(data: bytes, **kwargs: object) -> RtlTcpServer:
        servers.append(RtlTcpServer(data, **kwargs))  # type: ignore[arg-type]
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def run_until(
    source: RtlTcpSource, cond: Callable[[list[Frame]], bool], timeout: float = 10.0
) -> list[Frame]:
    """Iterate frames() in a thread until `cond(frames)` holds; then stop it."""
    stop = threading.Event()
    frames: list[Frame] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for f in source.frames(stop):
                frames.append(f)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not cond(frames):
            assert not errors, errors
            assert time.monotonic() < deadline, f"timed out; counts {dict(source.counts)}"
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(3)
    assert not thread.is_alive(), "frames() did not return after stop"
    assert not errors, errors
    return frames


def cmd(code: int, value: int) -> tuple[int, int]:
    return (code, value & 0xFFFFFFFF)


def test_same_frames_and_exactly_the_configured_commands(
    server_factory: Callable[..., RtlTcpServer], recording: bytes, reference: list[str]
) -> None:
    server = server_factory(recording)
    t0 = time.time()
    src = open_source(f"rtltcp://127.0.0.1:{server.port}?rate=2.4e6&gain=40&ppm=-3&biastee=1")
    assert isinstance(src, RtlTcpSource)
    frames = run_until(src, lambda fs: len(fs) >= len(reference))

    assert [f.hex for f in frames] == reference
    assert t0 - 1 < frames[0].rx_time and frames[-1].rx_time < time.time()
    assert server.connections == [
        [
            cmd(0x02, 2_400_000),  # sample rate
            cmd(0x01, 1_090_000_000),  # centre frequency
            cmd(0x05, -3),  # ppm, as int32
            cmd(0x08, 0),  # RTL AGC off
            cmd(0x03, 1),  # manual gain
            cmd(0x04, 400),  # 40.0 dB in tenths
            cmd(0x0E, 1),  # bias-tee on
        ]
    ]
    assert (src.tuner, src.gain_count) == (5, 29)


def test_auto_and_adaptive_gain_commands(
    server_factory: Callable[..., RtlTcpServer], recording: bytes
) -> None:
    server = server_factory(recording)
    auto = RtlTcpSource("127.0.0.1", server.port, TunerOptions(rate=2.4e6))
    run_until(auto, lambda fs: auto.counts["samples"] > 0)
    adaptive = RtlTcpSource("127.0.0.1", server.port, TunerOptions(gain="adaptive"))
    run_until(adaptive, lambda fs: adaptive.counts["samples"] > 0)

    common = [cmd(0x02, 2_400_000), cmd(0x01, 1_090_000_000), cmd(0x05, 0), cmd(0x08, 0)]
    assert server.connections[0] == [*common, cmd(0x03, 0)]  # no bias-tee: left alone
    # Adaptive: manual gain, then after the header the top of the 29 steps by index.
    assert server.connections[1] == [*common, cmd(0x03, 1), cmd(0x0D, 28)]
    assert adaptive.live.gain is not None and adaptive.live.gain.gain_db == 49.6


def test_reconnects_and_sends_the_commands_again(
    server_factory: Callable[..., RtlTcpServer], recording: bytes, reference: list[str]
) -> None:
    server = server_factory(recording, close_after_data=True)
    src = RtlTcpSource(
        "127.0.0.1", server.port, TunerOptions(gain=49.6), backoff_min=0.05, backoff_max=0.1
    )
    # Frames near the end of each connection are held back until more samples come,
    # so count the connects: three sessions, the first two fully demodulated.
    frames = run_until(src, lambda fs: src.counts["connects"] >= 3 and len(fs) > len(reference))
    assert src.counts["disconnects"] >= 2
    assert len(server.connections) >= 3
    assert server.connections[0] == server.connections[1]
    assert {f.hex for f in frames} <= set(reference)
    times = [f.rx_time for f in frames]
    assert times == sorted(times)


def test_not_an_rtl_tcp_server(server_factory: Callable[..., RtlTcpServer], recording: bytes):
    server = server_factory(recording, header=b"HTTP/1.1 200")
    src = RtlTcpSource("127.0.0.1", server.port, backoff_min=0.05, backoff_max=0.1)
    frames = run_until(src, lambda fs: src.counts["rtltcp_bad_header"] >= 2)
    assert frames == []
    assert src.counts["samples"] == 0


def test_unreachable_server_stops_promptly(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    src = RtlTcpSource("127.0.0.1", port, backoff_min=0.05, backoff_max=0.1)
    run_until(src, lambda fs: src.counts["connect_failed"] >= 3)
