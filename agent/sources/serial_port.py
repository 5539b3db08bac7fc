"""Serial receivers (Mode-S Beast, microADSB, GNS HATs) through pyserial.

    serial:///dev/serial/by-id/usb-...?format=beast|avr&baud=N&rtscts=0|1

Defaults per format: beast at 3,000,000 baud with RTS/CTS (older Beast firmware runs at
1,000,000: set baud); avr at 115,200 without flow control (microADSB; GNS HATs send AVR
at 3,000,000: set baud). The bytes go through the same incremental decoders as the TCP
feeds (beast.BeastDecoder, avr.AvrDecoder), so records split across reads, Beast escapes
and AVR's three line-end styles are handled once, in one place.

Use /dev/serial/by-id/... paths: /dev/ttyUSB0 and /dev/ttyACM0 are numbered in plug
order and swap when two adapters are replugged, a by-id name follows the adapter (its
USB serial number). The logs show what the path resolved to on each open.

When the device disappears (unplugged: reads fail, the node vanishes) the port is closed
and reopened with backoff until it is back (reopen.Reopener: one log line when it goes,
one when it returns). The decoder is reset on every open so that a record cut by the
unplug is not glued to the first bytes of the next session.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Generator, Iterator
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, unquote

import serial

from agent.errors import SourceError
from agent.frame import Frame
from agent.settings import Rule
from agent.sources.avr import AvrDecoder
from agent.sources.beast import BeastDecoder
from agent.sources.kind import OpenContext, SourceKind, SourceOptions
from agent.sources.options import Flag
from agent.sources.reopen import Reopener
from agent.sources.stream import READ_SIZE, Clock, FrameDecoder

log = logging.getLogger("agent.sources.serial")

FORMATS = ("beast", "avr")
DEFAULT_BAUD = {"beast": 3_000_000, "avr": 115_200}
DEFAULT_RTSCTS = {"beast": True, "avr": False}
BY_ID_DIR = "/dev/serial/by-id"
# Longest a read blocks before `stop` is looked at (the Source protocol asks <= 0.5 s).
READ_TIMEOUT_S = 0.5


def _baud(value: Any) -> int:
    try:
        baud = int(float(str(value)))
    except ValueError:
        raise ValueError("not a number") from None
    if baud <= 0:
        raise ValueError("must be positive")
    return baud


class SerialOptions(SourceOptions):
    """serial:// options.

    Attributes:
        path: the device node (the URL's path); prefer /dev/serial/by-id/...
        format: beast or avr.
        baud: line speed; None for the format's usual one (DEFAULT_BAUD).
        rtscts: hardware flow control; None for the format's usual (DEFAULT_RTSCTS).
    """

    path: str
    format: Literal["beast", "avr"] = "beast"
    baud: Annotated[int, Rule(parse=_baud)] | None = None
    rtscts: Flag | None = None


def describe_path(path: str) -> str:
    """'path -> /dev/ttyUSB0' for a symlink (by-id), the path itself otherwise."""
    real = os.path.realpath(path)
    return path if real == path else f"{path} -> {real}"


def by_id_aliases(path: str) -> list[str]:
    """The /dev/serial/by-id names of the device `path` points to (for the advice log)."""
    real = os.path.realpath(path)
    try:
        names = sorted(os.listdir(BY_ID_DIR))
    except OSError:
        return []
    return [
        os.path.join(BY_ID_DIR, n)
        for n in names
        if os.path.realpath(os.path.join(BY_ID_DIR, n)) == real
    ]


class SerialSource:
    """A Source over a serial receiver; reopens the port until `stop` is set.

    Counters (in `counts`): opens, open_failed, device_lost, bytes, plus the decoder's
    (frames, beast_resync, avr_garbage, ...).

    Args:
        path: the device node; prefer /dev/serial/by-id/... (see module docstring).
        fmt: "beast" or "avr".
        baud: line speed (default per format).
        rtscts: hardware flow control (default per format).
        name: source name on frames and logs (default 'serial://path').
        clock: wall clock giving each frame's rx_time.
        backoff_min, backoff_max: reopen backoff (reopen.Reopener).
    Raises:
        SourceError: unknown format or a non-positive baud rate.
    """

    def __init__(
        self,
        path: str,
        fmt: str = "beast",
        *,
        baud: int | None = None,
        rtscts: bool | None = None,
        name: str | None = None,
        clock: Clock = time.time,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
    ):
        if fmt not in FORMATS:
            raise SourceError(f"serial format {fmt!r}: expected beast or avr")
        self.baud = DEFAULT_BAUD[fmt] if baud is None else baud
        if self.baud <= 0:
            raise SourceError(f"baud {self.baud}: must be positive")
        self.path = path
        self.fmt = fmt
        self.rtscts = DEFAULT_RTSCTS[fmt] if rtscts is None else rtscts
        self.name = name or f"serial://{path}"
        self.clock = clock
        self.backoff = (backoff_min, backoff_max)
        self.counts: Counter[str] = Counter()
        if not path.startswith(BY_ID_DIR + "/"):
            aliases = by_id_aliases(path)
            if aliases:
                log.info(
                    "%s: ttyUSB/ttyACM numbers change with plug order; prefer %s",
                    self.name,
                    aliases[0],
                )

    def make_decoder(self) -> FrameDecoder:
        """A decoder for this format, timing frames by `self.clock`."""
        if self.fmt == "beast":
            return BeastDecoder(self.name, clock=self.clock, counts=self.counts)
        return AvrDecoder(self.name, clock=self.clock, counts=self.counts)

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Frames from the receiver, reopening the port as needed; returns when `stop` is set."""
        decoder = self.make_decoder()
        reopen = Reopener(self.name, stop, log, self.counts, self.backoff)
        while not stop.is_set():
            try:
                port = self._open()
            except (serial.SerialException, OSError, ValueError) as err:
                if not reopen.open_failed(_reason(err)):
                    return
                continue
            decoder.reset()
            reopen.opened(
                f"{describe_path(self.path)}, {self.fmt} at {self.baud} baud"
                + (", RTS/CTS" if self.rtscts else "")
            )
            before = self.counts["bytes"]
            try:
                reason = yield from self._read(port, decoder, stop)
            finally:
                port.close()
            if reason is None:
                return
            if not reopen.lost(reason, delivered=self.counts["bytes"] > before):
                return

    def _open(self) -> serial.Serial:
        # exclusive: a second agent (or minicom) on the same port would steal bytes and
        # both would see broken records; refuse instead (flock, as pyserial does it).
        return serial.Serial(
            self.path,
            self.baud,
            rtscts=self.rtscts,
            timeout=READ_TIMEOUT_S,
            exclusive=True,
        )

    def _read(
        self, port: serial.Serial, decoder: FrameDecoder, stop: threading.Event
    ) -> Generator[Frame, None, str | None]:
        """Frames from one open port; returns why it ended, None when `stop` was set."""
        while not stop.is_set():
            try:
                data = port.read(min(max(port.in_waiting, 1), READ_SIZE))
            except (serial.SerialException, OSError) as err:
                return _reason(err)
            if not data:
                if not os.path.exists(self.path):  # timeout and the node is gone
                    return "device node disappeared"
                continue
            self.counts["bytes"] += len(data)
            yield from decoder.feed(data)
        return None


def _reason(err: Exception) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def _locate(url: str, parts: SplitResult) -> dict[str, Any]:
    path = unquote(parts.path)
    if parts.netloc or not path:
        raise SourceError(f"{url}: expected serial:///dev/... (three slashes, absolute path)")
    return {"path": path}


def _open(url: str, options: SerialOptions, context: OpenContext) -> SerialSource:
    # A live input: frames are timed by the wall clock, start_time does not apply.
    return SerialSource(
        options.path, options.format, baud=options.baud, rtscts=options.rtscts, name=url
    )


KIND = SourceKind(
    scheme="serial",
    prefix="serial://",
    usage="serial:///dev/serial/by-id/...?format=beast|avr&baud=N&rtscts=0|1",
    options=SerialOptions,
    locate=_locate,
    open=_open,
    cannot_open_fix=(
        "only one program can open a device: `sudo systemctl stop adsb-agent` first; "
        "then `dmesg` for USB errors (firmware_notes/dongle.md)"
    ),
    no_data_fix=("check the cable, the baud rate and RTS/CTS (firmware_notes/serial-receivers.md)"),
)
