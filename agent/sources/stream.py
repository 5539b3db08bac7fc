"""What the Beast and AVR inputs share: replay time, signal level, recorded-file reading.

The byte decoders (beast.BeastDecoder, avr.AvrDecoder) are pure and incremental: they
take whatever bytes a read returned and keep the unfinished tail for the next call, so
a frame split across two reads (or two TCP segments) is never lost. This module holds
the pieces both need, and `RecordingSource`, which replays a file or standard input
through one of them.
"""

from __future__ import annotations

import logging
import math
import os
import select
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator

from agent.errors import SourceError
from agent.frame import Frame, frame_bits
from agent.sources.sniff import FormatCheck

log = logging.getLogger(__name__)

# Beast and AVR-MLAT timestamps count a free-running 12 MHz clock (48 bits).
TICKS_PER_SECOND = 12_000_000
# readsb/dump1090 stamp frames synthesised from multilateration results with "\xff\x00MLAT"
# (plus a small offset): not a receive time, so such frames are timed like untimed ones.
MLAT_MAGIC_TICKS = 0xFF004D4C4154
_MLAT_MAGIC_SPAN = 10
# The tick counter has 48 bits and wraps to zero.
TICK_WRAP = 1 << 48
_HALF_WRAP = TICK_WRAP // 2
# Ticks up to this far behind the newest are frames slightly out of order (receivers
# with several demodulator threads, merged feeds): they keep the newest time. Further
# back is a new segment (see ReplayTimer).
REORDER_TICKS = TICKS_PER_SECOND
# How far back a repeated record is still recognised (RecordMemory): a log written
# twice in blocks repeats each block after it; a read buffer of a busy feed spans about
# a second. At ~2,000 frames/s this remembers ~20,000 records.
DUPLICATE_WINDOW_TICKS = 10 * TICKS_PER_SECOND
MAX_REMEMBERED = 50_000
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
    from it, so tracks age as they did when recorded. Time never runs backwards (the
    tracker's expiry relies on it) and is never stretched by ticks that step back:

    - ticks step forward: time advances by the distance, across the 48-bit wrap too;
    - ticks step back by at most REORDER_TICKS (frames slightly out of order): the frame
      gets the newest frame's time and the newest tick stays the reference;
    - ticks step back further (receiver restart, concatenated recordings): a new
      segment starts there, continuing from the newest time, not re-anchored anywhere
      else (the wall clock plays no part in a replay);
    - no usable ticks (None): the newest time.

    Repeated records (a doubled log) must be taken out before (RecordMemory): a copy
    stepping back is otherwise a new segment and replays the copied span again.
    """

    def __init__(self, start_time: float):
        self._origin = start_time
        # The newest tick of the current segment, and its distance in ticks from the
        # segment's first (an int: exact however long the recording).
        self._newest: int | None = None
        self._elapsed = 0
        self._last = start_time
        self.segments = 0

    def at(self, ticks: int | None) -> float:
        """The receive time of a frame stamped `ticks` (None: no usable stamp)."""
        if ticks is None:
            return self._last
        if self._newest is None:
            self._start_segment(ticks)
            return self._last
        ahead = tick_distance(self._newest, ticks)
        if ahead >= 0:
            self._newest = ticks
            self._elapsed += ahead
            self._last = self._origin + self._elapsed / TICKS_PER_SECOND
        elif ahead < -REORDER_TICKS:
            self._start_segment(ticks)
        return self._last

    def _start_segment(self, ticks: int) -> None:
        self._origin, self._newest, self._elapsed = self._last, ticks, 0
        self.segments += 1


class RecordMemory:
    """Which timed records one source already delivered, to drop repeats of them.

    A log written twice (each record, or each block of records, stored again) repeats
    records with their tick count; a real reply is never heard twice at the same 12 MHz
    tick, so the same record (ticks, signal and message) seen again is a repeat.
    Records are remembered while they are within DUPLICATE_WINDOW_TICKS of the newest
    tick (a repeated block steps back by its span) and at most MAX_REMEMBERED of them;
    a record further back that is not a repeat starts a new segment and the memory
    is cleared (a receiver restart: its counter starts again from zero).
    """

    def __init__(self, window_ticks: int | None = None, max_remembered: int | None = None):
        self.window_ticks = DUPLICATE_WINDOW_TICKS if window_ticks is None else window_ticks
        self.max_remembered = MAX_REMEMBERED if max_remembered is None else max_remembered
        self._newest: int | None = None
        self._order: deque[tuple[int, bytes]] = deque()
        self._seen: set[bytes] = set()

    def repeated(self, ticks: int, record: bytes) -> bool:
        """True when `record` (its ticks included) was seen; else remember it."""
        if record in self._seen:
            return True
        if self._newest is None:
            self._newest = ticks
        else:
            ahead = tick_distance(self._newest, ticks)
            if ahead >= 0:
                self._newest = ticks
            elif ahead < -self.window_ticks:
                self._order.clear()
                self._seen.clear()
                self._newest = ticks
        self._seen.add(record)
        self._order.append((ticks, record))
        self._forget_old()
        return False

    def _forget_old(self) -> None:
        assert self._newest is not None
        order, seen = self._order, self._seen
        while order:
            age = tick_distance(order[0][0], self._newest)
            if age <= self.window_ticks and len(order) <= self.max_remembered:
                break
            seen.discard(order.popleft()[1])


def tick_distance(earlier: int, later: int) -> int:
    """later - earlier in ticks on the 48-bit counter, negative when `later` is behind.

    The counter wraps at 2**48 (271 days): a step of more than half the range forward
    is read as a step back, the other way round as a wrap.
    """
    return (later - earlier + _HALF_WRAP) % TICK_WRAP - _HALF_WRAP


class FrameDecoder:
    """An incremental bytes -> frames decoder: what BeastDecoder and AvrDecoder share.

    Both keep the unfinished tail of the input in `_buf`, time frames by the wall clock
    (live) or the recording's ticks (`_replay`), drop repeated timed records (counter
    `duplicate_records`, see RecordMemory) and count into the owning source's counter.
    Subclasses implement feed() and finish(), name the counter of dropped tails in
    PARTIAL_COUNTER, the counters of well-formed records in VALID_COUNTERS (what tells
    that the input is in this format) and clear their own sync state in _clear_sync().

    Args:
        source: name put in every Frame.
        clock: wall clock for live input, read once per feed().
        start_time: replay mode when set: rx_time comes from the recording's ticks, the
            first timed frame at start_time (see ReplayTimer).
        counts: counter to add to (the owning source's), a new one when None.
    """

    PARTIAL_COUNTER = "partial_dropped"
    VALID_COUNTERS: tuple[str, ...] = ("frames", "mode_ac", "duplicate_records")

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
        self._memory = RecordMemory()
        self._untimed_said = False
        self._buf = bytearray()
        self._clear_sync()

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by `data`; an unfinished tail is kept for the next call."""
        raise NotImplementedError

    def finish(self) -> list[Frame]:
        """End of input: frames the kept tail still completes, then forget it."""
        raise NotImplementedError

    def reset(self) -> None:
        """Drop the kept tail (new connection: it must not be glued to new bytes).

        Remembered records are forgotten too: a new connection is a new stream, and a
        server may well send again what it sent before the drop.
        """
        if self._buf:
            self.counts[self.PARTIAL_COUNTER] += 1
            self._buf.clear()
        self._memory = RecordMemory()
        self._clear_sync()

    def _clear_sync(self) -> None:
        """Forget any decoder-specific state about where the stream stands."""

    def valid_records(self) -> int:
        """Well-formed records so far: zero after a good read means a wrong format."""
        return sum(self.counts[name] for name in self.VALID_COUNTERS)

    def _receive_time(self, ticks: int | None, record: bytes, wall: float) -> float | None:
        """The frame's rx_time; None when it repeats a record already delivered.

        Args:
            ticks: the record's usable tick count (None: absent or MLAT).
            record: what identifies it: ticks, signal and message as received.
            wall: the wall-clock time of this read (live input).
        """
        if ticks is not None and self._memory.repeated(ticks, record):
            self.counts["duplicate_records"] += 1
            return None
        if self._replay is None:
            return wall
        if ticks is None and not self._untimed_said:
            self._untimed_said = True
            log.info(
                "%s: frames without a timestamp are placed at the newest timed frame's "
                "time (the start time before any): they carry no time of their own",
                self.source,
            )
        return self._replay.at(ticks)


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

    Subclasses only choose the decoder and name their FORMAT; see beast.BeastFileSource
    and avr.AvrFileSource.
    """

    FORMAT = ""

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
        """Every frame of the recording in order; returns at EOF or when `stop` is set.

        Warns once when the first sniff.SNIFF_BYTES hold no well-formed record, naming
        the format the bytes look like (a Beast file read as AVR, IQ read as Beast).
        """
        decoder = self.make_decoder()
        check = FormatCheck(self.name, self.FORMAT)
        for chunk in read_chunks(self.path, stop):
            frames = decoder.feed(chunk)
            check.feed(chunk, decoder.valid_records())
            yield from frames
            if stop.is_set():
                return
        frames = decoder.finish()
        check.finish(decoder.valid_records())
        yield from frames
