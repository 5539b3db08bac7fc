"""What the Beast and AVR inputs share: replay time, signal level, recorded-file reading.

The byte decoders (beast.BeastDecoder, avr.AvrDecoder) are pure and incremental: they
take whatever bytes a read returned and keep the unfinished tail for the next call, so
a frame split across two reads (or two TCP segments) is never lost. This module holds
the pieces both need, and `RecordingSource`, which replays a file or standard input
through one of them.
"""

from __future__ import annotations

import math
import os
import select
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

from agent.errors import SourceError
from agent.frame import Frame, frame_bits

# Beast and AVR-MLAT timestamps count a free-running 12 MHz clock (48 bits).
TICKS_PER_SECOND = 12_000_000
# readsb/dump1090 stamp frames synthesised from multilateration results with "\xff\x00MLAT"
# (plus a small offset): not a receive time, so such frames are timed like untimed ones.
MLAT_MAGIC_TICKS = 0xFF004D4C4154
_MLAT_MAGIC_SPAN = 10
# Wall clock used for live sources; injectable so tests need not sleep.
Clock = Callable[[], float]
# Bytes asked of one read(): large enough for a second of a busy Beast stream.
READ_SIZE = 65536
# How long a read of standard input may block before `stop` is looked at again.
POLL_S = 0.5


def real_ticks(ticks: int) -> int | None:
    """The 12 MHz tick count, or None when it is absent (0) or an MLAT marker."""
    if ticks == 0 or MLAT_MAGIC_TICKS <= ticks <= MLAT_MAGIC_TICKS + _MLAT_MAGIC_SPAN:
        return None
    return ticks


def signal_dbfs(level: int) -> float | None:
    """dBFS of a Beast/AVR signal byte (0-255, amplitude relative to full scale).

    dump1090 and readsb send sqrt(power) * 255, so 20*log10(level/255) is the power in
    dBFS. Level 0 means "not measured" (several receivers send 0) and gives None rather
    than minus infinity, which JSON and the tracker's averages cannot carry.
    """
    if level <= 0:
        return None
    return round(20.0 * math.log10(level / 255.0), 2)


def length_matches_df(msg: bytes) -> bool:
    """True when the message is as long as its downlink format says (56 or 112 bits)."""
    return len(msg) * 8 == frame_bits(msg[0] >> 3)


class ReplayTimer:
    """Receive times for a recording, taken from its own 12 MHz clock.

    The first timed frame is placed at `start_time`; later ones at their tick distance
    from it, so tracks age as they did when recorded. When the ticks go backwards
    (counter wrap after 271 days, receiver restart, concatenated recordings) or are
    missing, the frame gets the previous frame's time and the ticks re-anchor there:
    time never runs backwards, which the tracker's expiry relies on.
    """

    def __init__(self, start_time: float):
        self._last = start_time
        self._anchor_ticks: int | None = None
        self._anchor_time = start_time
        self._prev_ticks = -1

    def at(self, ticks: int | None) -> float:
        """The receive time of a frame stamped `ticks` (None: no usable stamp)."""
        if ticks is None:
            return self._last
        if self._anchor_ticks is None or ticks < self._prev_ticks:
            self._anchor_ticks, self._anchor_time = ticks, self._last
        self._prev_ticks = ticks
        self._last = self._anchor_time + (ticks - self._anchor_ticks) / TICKS_PER_SECOND
        return self._last


class FrameDecoder:
    """An incremental bytes -> frames decoder: what BeastDecoder and AvrDecoder share.

    Both keep the unfinished tail of the input in `_buf`, time frames by the wall clock
    (live) or the recording's ticks (`_replay`), and count into the owning source's
    counter. Subclasses implement feed() and finish(), name the counter of dropped tails
    in PARTIAL_COUNTER and clear their own sync state in _clear_sync().

    Args:
        source: name put in every Frame.
        clock: wall clock for live input, read once per feed().
        start_time: replay mode when set: rx_time comes from the recording's ticks, the
            first timed frame at start_time (see ReplayTimer).
        counts: counter to add to (the owning source's), a new one when None.
    """

    PARTIAL_COUNTER = "partial_dropped"

    def __init__(
        self,
        source: str = "",
        *,
        clock: Clock = time.time,
        start_time: float | None = None,
        counts: Counter[str] | None = None,
    ):
        self.source = source
        self.counts: Counter[str] = counts if counts is not None else Counter()
        self._clock = clock
        self._replay = ReplayTimer(start_time) if start_time is not None else None
        self._buf = bytearray()
        self._clear_sync()

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by `data`; an unfinished tail is kept for the next call."""
        raise NotImplementedError

    def finish(self) -> list[Frame]:
        """End of input: frames the kept tail still completes, then forget it."""
        raise NotImplementedError

    def reset(self) -> None:
        """Drop the kept tail (new connection: it must not be glued to new bytes)."""
        if self._buf:
            self.counts[self.PARTIAL_COUNTER] += 1
            self._buf.clear()
        self._clear_sync()

    def _clear_sync(self) -> None:
        """Forget any decoder-specific state about where the stream stands."""


def check_readable(path: str) -> None:
    """Raise SourceError now, at start-up, rather than later in a reader thread."""
    if path == "-":
        return
    if not os.path.exists(path):
        raise SourceError(f"{path}: file not found")
    if os.path.isdir(path):
        raise SourceError(f"{path}: is a directory")
    if not os.access(path, os.R_OK):
        raise SourceError(f"{path}: permission denied")


def read_chunks(path: str, stop: threading.Event, size: int = READ_SIZE) -> Iterator[bytes]:
    """Bytes of a file, or of standard input for '-', until EOF or `stop`.

    Standard input may be a quiet pipe (`nc host 30005 | adsb-agent replay -`): reads
    wait at most POLL_S so that `stop` is honoured as the Source protocol requires.
    """
    if path == "-":
        yield from _read_fd(sys.stdin.buffer.fileno(), stop, size)
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as err:
        raise SourceError(f"{path}: cannot open: {err.strerror}") from None
    try:
        yield from _read_fd(fd, stop, size)
    finally:
        os.close(fd)


def _read_fd(fd: int, stop: threading.Event, size: int) -> Iterator[bytes]:
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if not ready:
            continue
        data = os.read(fd, size)
        if not data:
            return
        yield data


class RecordingSource:
    """Replays a Beast or AVR recording (file or '-') through a decoder.

    Subclasses only choose the decoder; see beast.BeastFileSource and avr.AvrFileSource.
    """

    def __init__(self, path: str, *, name: str | None = None, start_time: float = 0.0):
        check_readable(path)
        self.path = path
        self.name = name or ("stdin" if path == "-" else path)
        self.start_time = start_time
        self.counts: Counter[str] = Counter()

    def make_decoder(self) -> FrameDecoder:
        """A fresh decoder timing frames from the recording's ticks (subclass hook)."""
        raise NotImplementedError

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Every frame of the recording in order; returns at EOF or when `stop` is set."""
        decoder = self.make_decoder()
        for chunk in read_chunks(self.path, stop):
            yield from decoder.feed(chunk)
            if stop.is_set():
                return
        yield from decoder.finish()
