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
from typing import Generic, TypeVar

from agent.errors import SourceError
from agent.frame import Frame, frame_bits
from agent.sources.sniff import FormatCheck

log = logging.getLogger(__name__)
T = TypeVar("T")

# Beast and AVR-MLAT timestamps count a free-running 12 MHz clock (48 bits).
TICKS_PER_SECOND = 12_000_000
# readsb/dump1090 stamp frames synthesised from multilateration results with "\xff\x00MLAT"
# (plus a small offset): not a receive time, so such frames are timed like untimed ones.
MLAT_MAGIC_TICKS = 0xFF004D4C4154
_MLAT_MAGIC_SPAN = 10
# The tick counter has 48 bits and wraps to zero.
TICK_WRAP = 1 << 48
_HALF_WRAP = TICK_WRAP // 2
# Frames up to this far behind the newest are slightly out of order (receivers with
# several demodulator threads, merged feeds) and keep the newest time; a step further
# back or ahead waits for the next frame to agree (see ReplayTimer).
STEP_TICKS = TICKS_PER_SECOND
# Records remembered to recognise a repeat (RecordMemory): a log written twice in
# blocks repeats each block right after it; a read buffer of a busy feed holds about a
# second. 10 s at a busy site's ~2,000 frames/s, a few MB.
REMEMBERED_RECORDS = 20_000
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


class ReplayTimer(Generic[T]):
    """Receive times for a recording, taken from its own 12 MHz clock.

    The first timed frame is placed at `start_time`; later ones at their tick distance
    from it, so tracks age as they did when recorded. Time never runs backwards (the
    tracker's expiry relies on it) and is not stretched by ticks that step back:

    - a step forward (across the 48-bit wrap too) advances time by the distance;
    - a step back of at most STEP_TICKS (frames slightly out of order) gives the newest
      frame's time, and the newest tick stays the reference;
    - a step back further (receiver restart, concatenated recordings) starts a new
      segment there, continuing from the newest time (never from the wall clock);
    - no usable ticks (None): the newest time.

    A step of more than STEP_TICKS either way waits for the next timed frame: a record
    glued together from two cut ones (a log written twice in read buffers) carries
    random ticks, and one such frame must not throw the clock hours ahead or start a
    segment. If the next frame continues the old timeline (not far behind the newest
    tick, and nearer to it than to the held frame) the step was noise: the held frame
    gets the newest time. Otherwise (the next frame follows the held one, or jumps
    again) the step is taken. The held frame comes out with that next frame, in order;
    finish() releases what is held at the end.

    Repeated records (a doubled log) must be taken out before (RecordMemory).
    """

    def __init__(self, start_time: float):
        self._origin = start_time
        # The newest tick of the current segment and its distance in ticks from the
        # segment's first (an int: exact however long the recording).
        self._newest: int | None = None
        self._elapsed = 0
        self._last = start_time
        # A frame whose step waits for the next timed frame, and untimed ones after it.
        self._held: list[tuple[int | None, T]] = []
        self.segments = 0

    def take(self, ticks: int | None, item: T) -> list[tuple[float, T]]:
        """(rx_time, item) of `item` stamped `ticks` and of held ones it releases."""
        if not self._held:
            return self._place(ticks, item)
        if ticks is None:
            self._held.append((None, item))
            return []
        held_ticks = self._held[0][0]
        assert held_ticks is not None and self._newest is not None
        from_newest = tick_distance(self._newest, ticks)
        old_timeline_goes_on = from_newest >= -STEP_TICKS and abs(from_newest) < abs(
            tick_distance(held_ticks, ticks)
        )
        return self._release(not old_timeline_goes_on) + self._place(ticks, item)

    def finish(self) -> list[tuple[float, T]]:
        """End of the recording: what is held, its step taken (nothing contradicts it)."""
        return self._release(True) if self._held else []

    def _place(self, ticks: int | None, item: T) -> list[tuple[float, T]]:
        if ticks is None:
            return [(self._last, item)]
        if self._newest is None:
            self._start_segment(ticks)
            return [(self._last, item)]
        ahead = tick_distance(self._newest, ticks)
        if ahead > STEP_TICKS or ahead < -STEP_TICKS:
            self._held.append((ticks, item))
            return []
        if ahead > 0:
            self._advance(ticks, ahead)
        return [(self._last, item)]

    def _release(self, confirmed: bool) -> list[tuple[float, T]]:
        held, self._held = self._held, []
        ticks = held[0][0]
        assert ticks is not None and self._newest is not None
        if confirmed:
            ahead = tick_distance(self._newest, ticks)
            if ahead >= 0:
                self._advance(ticks, ahead)
            else:
                self._start_segment(ticks)
        return [(self._last, item) for _, item in held]

    def _advance(self, ticks: int, ahead: int) -> None:
        self._newest = ticks
        self._elapsed += ahead
        self._last = self._origin + self._elapsed / TICKS_PER_SECOND

    def _start_segment(self, ticks: int) -> None:
        self._origin, self._newest, self._elapsed = self._last, ticks, 0
        self.segments += 1


class RecordMemory:
    """The last records one source delivered, to drop repeats of them.

    A log written twice (each record, or each block of records, stored again) repeats
    records with their tick count; a reply is never heard twice at the same 12 MHz
    tick, so the same record (ticks, signal and message) seen again is a repeat. The
    last REMEMBERED_RECORDS are kept (a repeated block comes right after its original).
    """

    def __init__(self, size: int | None = None):
        self.size = REMEMBERED_RECORDS if size is None else size
        self._order: deque[bytes] = deque()
        self._seen: set[bytes] = set()

    def repeated(self, record: bytes) -> bool:
        """True when `record` (its ticks included) was seen; else remember it."""
        if record in self._seen:
            return True
        self._seen.add(record)
        self._order.append(record)
        if len(self._order) > self.size:
            self._seen.discard(self._order.popleft())
        return False


def tick_distance(earlier: int, later: int) -> int:
    """later - earlier in ticks on the 48-bit counter, negative when `later` is behind.

    The counter wraps at 2**48 (271 days): a step of more than half the range forward
    is read as a step back, the other way round as a wrap.
    """
    return (later - earlier + _HALF_WRAP) % TICK_WRAP - _HALF_WRAP


# A frame waiting for its receive time: message, ticks, signal level.
_Pending = tuple[bytes, int | None, float | None]


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
        self._replay: ReplayTimer[_Pending] | None = (
            ReplayTimer(start_time) if start_time is not None else None
        )
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

    def _emit(
        self,
        out: list[Frame],
        msg: bytes,
        ticks: int | None,
        dbfs: float | None,
        record: bytes,
        wall: float,
    ) -> None:
        """Append the frame to `out` (or hold it, replay), unless it repeats a record.

        Args:
            ticks: the record's usable tick count (None: absent or MLAT).
            dbfs: its signal level.
            record: what identifies it: ticks, signal and message as received.
            wall: the wall-clock time of this read (live input).
        """
        if ticks is not None and self._memory.repeated(record):
            self.counts["duplicate_records"] += 1
            return
        if self._replay is None:
            self.counts["frames"] += 1
            out.append(Frame(msg, wall, dbfs, self.source, ticks))
            return
        if ticks is None and not self._untimed_said:
            self._untimed_said = True
            log.info(
                "%s: frames without a timestamp are placed at the newest timed frame's "
                "time (the start time before any): they carry no time of their own",
                self.source,
            )
        self._timed(out, self._replay.take(ticks, (msg, ticks, dbfs)))

    def _release_held(self) -> list[Frame]:
        """End of input: frames the replay timer still holds."""
        out: list[Frame] = []
        if self._replay is not None:
            self._timed(out, self._replay.finish())
        return out

    def _timed(self, out: list[Frame], placed: list[tuple[float, _Pending]]) -> None:
        for rx_time, (msg, ticks, dbfs) in placed:
            self.counts["frames"] += 1
            out.append(Frame(msg, rx_time, dbfs, self.source, ticks))


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
