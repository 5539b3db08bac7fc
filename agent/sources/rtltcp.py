"""rtl_tcp client: a dongle on another box (or another process) feeding the demodulator.

    rtltcp://host:port?rate=2.4e6&gain=auto|adaptive|DB&ppm=N&biastee=0|1

Protocol (osmocom rtl_tcp, spoken by rtl_433, SDR#, GQRX): on connect the server sends a
12-byte header, b"RTL0", tuner type and number of tuner gains (big-endian uint32s), then
raw UC8 samples for as long as the connection lasts. The client sends 5-byte commands,
one byte code and a big-endian uint32 parameter, at any time:
    0x01 centre frequency (Hz)      0x02 sample rate (Hz)     0x03 gain mode (1 = manual)
    0x04 tuner gain (tenths of dB)  0x05 ppm correction (int32) 0x08 RTL AGC (0/1)
    0x0d tuner gain by index        0x0e bias-tee (0/1)
The server's dongle keeps its settings between clients, so every connection sends all
of them (RTL AGC off explicitly, ppm even when 0); bias-tee only when asked for, so an
LNA powered by the server's own options is never switched off by a default.

Transport: agent.sources.tcp.TcpStream (reconnect with backoff, state-change logging);
the subclass here sends the commands as soon as a connection is up. Adaptive gain walks
the server's gain list by index (0x0d): the header gives its length; the dB values are
known only for the R820T, the usual tuner, and are reported as step numbers otherwise.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult

from agent.frame import Frame
from agent.sources.gain import AdaptiveGain, GainStep
from agent.sources.kind import OpenContext, SourceKind, host_port
from agent.sources.live_iq import LiveIq
from agent.sources.stream import Clock
from agent.sources.tcp import TcpStream
from agent.sources.tuner import ADSB_FREQ_HZ, TunerOptions
from agent.verify import FrameVerifier

log = logging.getLogger("agent.sources.rtltcp")

MAGIC = b"RTL0"
HEADER_BYTES = 12
CMD_FREQ = 0x01
CMD_RATE = 0x02
CMD_GAIN_MODE = 0x03
CMD_GAIN = 0x04
CMD_PPM = 0x05
CMD_AGC = 0x08
CMD_GAIN_INDEX = 0x0D
CMD_BIAS_TEE = 0x0E
TUNER_NAMES = {1: "E4000", 2: "FC0012", 3: "FC0013", 4: "FC2580", 5: "R820T", 6: "R828D"}
# librtlsdr's R820T/R828D gain list (tenths of dB), what index commands step through.
R820T_GAINS_TENTHS = (
    0, 9, 14, 27, 37, 77, 87, 125, 144, 157, 166, 197, 207, 229, 254,
    280, 297, 328, 338, 364, 372, 386, 402, 421, 434, 439, 445, 480, 496,
)  # fmt: skip
# TCP delivers in bursts: allow more sample/wall clock skew than a local dongle.
MAX_SKEW_S = 0.5


def command(code: int, value: int) -> bytes:
    """One rtl_tcp command: code byte, parameter as big-endian uint32 (two's complement)."""
    return struct.pack(">BI", code, value & 0xFFFFFFFF)


def setup_commands(options: TunerOptions) -> list[bytes]:
    """The commands every connection starts with, in the order they are sent."""
    out = [
        command(CMD_RATE, int(options.rate)),
        command(CMD_FREQ, ADSB_FREQ_HZ),
        command(CMD_PPM, options.ppm),
        command(CMD_AGC, 0),
    ]
    if options.gain == "auto":
        out.append(command(CMD_GAIN_MODE, 0))
    else:
        out.append(command(CMD_GAIN_MODE, 1))
        if isinstance(options.gain, float):
            out.append(command(CMD_GAIN, round(options.gain * 10)))
    if options.biastee is not None:
        out.append(command(CMD_BIAS_TEE, int(options.biastee)))
    return out


class _CommandStream(TcpStream):
    """TcpStream that sends the setup commands on every connect and keeps the socket."""

    def __init__(self, *args: object, commands: list[bytes], **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.commands = b"".join(commands)
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket | None:
        sock = super()._connect()
        if sock is not None:
            try:
                sock.sendall(self.commands)
            except OSError:
                sock.close()
                raise
        self.sock = sock
        return sock

    def send(self, data: bytes) -> None:
        """Send a command on the current connection; a failure shows up as a lost read."""
        if self.sock is not None:
            try:
                self.sock.sendall(data)
            except OSError as err:
                log.debug("%s: command not sent: %s", self.name, err)

    def drop(self) -> None:
        """End the current connection (not an rtl_tcp server): the reader reconnects."""
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass(slots=True)
class _Connection:
    """What is known about the current connection's byte stream."""

    header: bytes = b""
    ignore: bool = False  # not an rtl_tcp server: skip until the next connection


class RtlTcpSource:
    """A Source over an rtl_tcp server; reconnects until `stop` is set.

    Counters (in `counts`, shared with the demodulator): connects, disconnects,
    connect_failed (TcpStream), rtltcp_bad_header, gain_changes, samples, clock_resync
    and the demodulator's own.

    Args:
        host, port: the rtl_tcp server (default port 1234).
        options: rate, gain, ppm, bias-tee (sent on every connect).
        name: source name (default 'rtltcp://host:port').
        clock: wall clock for receive times.
        verifier: the pipeline's verifier (see LiveIq).
        **timing: TcpStream connect_timeout, read_timeout, backoff_min, backoff_max.
    """

    def __init__(
        self,
        host: str,
        port: int = 1234,
        options: TunerOptions | None = None,
        *,
        name: str | None = None,
        clock: Clock = time.time,
        verifier: FrameVerifier | None = None,
        **timing: float,
    ):
        self.host = host
        self.port = port
        self.options = options or TunerOptions()
        self.name = name or f"rtltcp://{host}:{port}"
        self.clock = clock
        self.timing = timing
        self.live = LiveIq(
            self.options.rate,
            self.name,
            clock,
            max_skew_s=MAX_SKEW_S,
            demod=self.options.demod,
            verifier=verifier,
        )
        self.counts: Counter[str] = self.live.counts
        # From the last header: tuner type and number of gains.
        self.tuner: int | None = None
        self.gain_count: int | None = None

    @property
    def noise_floor_dbfs(self) -> float | None:
        """The demodulator's noise floor (dBFS), None before the first block."""
        return self.live.demod.noise_floor_dbfs

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Frames from the server's stream; returns only when `stop` is set."""
        conn = _Connection()

        def on_connect() -> None:
            conn.header, conn.ignore = b"", False
            self.live.restart()  # what the last connection left gathered is not dropped

        stream = _CommandStream(
            self.host,
            self.port,
            stop,
            name=self.name,
            counts=self.counts,
            on_connect=on_connect,
            commands=setup_commands(self.options),
            **self.timing,
        )
        for chunk in stream:
            if conn.ignore:
                continue
            if len(conn.header) < HEADER_BYTES:
                need = HEADER_BYTES - len(conn.header)
                conn.header += chunk[:need]
                chunk = chunk[need:]
                if len(conn.header) < HEADER_BYTES:
                    continue
                if not self._accept_header(conn.header, stream):
                    conn.ignore = True
                    continue
            frames, step = self.live.feed(chunk, self.clock())
            if step is not None:
                self._set_gain(stream, step)
            yield from frames

    def _accept_header(self, header: bytes, stream: _CommandStream) -> bool:
        magic, tuner, count = header[:4], *struct.unpack(">II", header[4:])
        if magic != MAGIC:
            self.counts["rtltcp_bad_header"] += 1
            log.warning(
                "%s: not an rtl_tcp server (header %r); disconnecting", self.name, header[:4]
            )
            stream.drop()
            return False
        if (tuner, count) != (self.tuner, self.gain_count):
            log.info(
                "%s: rtl_tcp tuner %s with %d gains",
                self.name,
                TUNER_NAMES.get(tuner, f"type {tuner}"),
                count,
            )
        self.tuner, self.gain_count = tuner, count
        if self.options.gain == "adaptive" and count > 0:
            if self.live.gain is None or len(self.live.gain.ladder) != count:
                self.live.gain = AdaptiveGain(self._ladder(tuner, count))
            stream.send(command(CMD_GAIN_INDEX, self.live.gain.index))
        return True

    @staticmethod
    def _ladder(tuner: int, count: int) -> list[float]:
        if tuner in (5, 6) and count == len(R820T_GAINS_TENTHS):
            return [g / 10 for g in R820T_GAINS_TENTHS]
        return [float(i) for i in range(count)]

    def _set_gain(self, stream: _CommandStream, step: GainStep) -> None:
        stream.send(command(CMD_GAIN_INDEX, step.index))
        self.counts["gain_changes"] += 1
        log.info("%s: gain step %d (%g) (%s)", self.name, step.index, step.gain_db, step.reason)


DEFAULT_PORT = 1234


class RtlTcpOptions(TunerOptions):
    """rtltcp:// options: the tuner's, and the server (the URL's host part)."""

    host: str
    port: int = DEFAULT_PORT


def _locate(url: str, parts: SplitResult) -> dict[str, Any]:
    where = host_port(url, parts)
    return {"host": where["host"], "port": where["port"] or DEFAULT_PORT}


def _open(url: str, options: RtlTcpOptions, context: OpenContext) -> RtlTcpSource:
    return RtlTcpSource(options.host, options.port, options, name=url, verifier=context.verifier)


KIND = SourceKind(
    scheme="rtltcp",
    prefix="rtltcp://",
    usage="rtltcp://host:port?rate=..&gain=..&ppm=..&biastee=..  (rtl_tcp server, port 1234)",
    options=RtlTcpOptions,
    locate=_locate,
    open=_open,
    cannot_open_fix="is the receiver running and the host and port right? a firewall?",
    no_data_fix="check the dongle's cable and power; `rtl_test -t` should find it",
)
