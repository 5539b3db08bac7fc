"""AVR text input: readsb/dump1090 port 30002, microADSB and GNS serial receivers, logs.

One frame per line, hex digits between a prefix and ';':
    *HEX;                   no timestamp (':' is accepted as the same)
    @TTTTTTTTTTTTHEX;       12 hex digits of 12 MHz ticks first ('%' is the same)
    <TTTTTTTTTTTTSSHEX;     ticks, then a signal byte as in Beast
HEX is 14 (short) or 28 (long) digits; 4 digits is Mode A/C, counted and skipped.
Anything after ';' is ignored. Lines end in \\n, \\r\\n or, on microADSB, \\n\\r: CR and
LF are both line ends and empty lines are skipped, which covers all three.
"""

from __future__ import annotations

import re

from agent.frame import Frame
from agent.sources.stream import (
    FrameDecoder,
    RecordingSource,
    length_matches_df,
    real_ticks,
    signal_dbfs,
)
from agent.sources.tcp import TcpFrameSource, feed_kind

# Longest line kept while waiting for its end; real ones are under 50 bytes, so more
# means a binary stream on the text port or a stuck sender: dropped up to the next line.
MAX_LINE = 1024
_EOL = re.compile(rb"[\r\n]")
_LINE = re.compile(rb"([*:@%<])([^;]*);")
_HEX = re.compile(rb"[0-9A-Fa-f]*")
_TICK_DIGITS = 12
_SIGNAL_DIGITS = 2
_MODE_AC_DIGITS = 4
_FRAME_DIGITS = (14, 28)


class AvrDecoder(FrameDecoder):
    """Incremental AVR decoder: feed it reads of any size, get complete frames back.

    Not thread-safe; one per connection or file. Lengths are checked against the DF,
    CRC is not (the verifier's job). A bad line is counted and skipped, never raised.

    Counters: frames, mode_ac, avr_garbage (no known prefix or no ';'), avr_bad_hex,
    avr_bad_length, avr_df_length_mismatch, avr_overlong (no line end within
    MAX_LINE bytes), avr_partial_dropped (unfinished line at reset), duplicate_records
    (a timed line repeated with its ticks: a doubled log, see stream.RecordMemory).

    Args:
        source: name put in every Frame.
        clock: wall clock for live input, read once per feed().
        start_time: replay mode when set: rx_time comes from '@'/'%'/'<' ticks, the
            first timed frame at start_time; '*' lines get the previous frame's time
            (start_time before any tick). See stream.ReplayTimer.
        counts: counter to add to (the owning source's), a new one when None.
    """

    PARTIAL_COUNTER = "avr_partial_dropped"

    def _clear_sync(self) -> None:
        # Inside an overlong line: everything up to the next line end is dropped.
        self._discarding = False

    def feed(self, data: bytes) -> list[Frame]:
        """Frames of the lines completed by `data`; the unfinished line is kept."""
        buf = self._buf
        buf += data
        wall = 0.0 if self._replay is not None else self._clock()
        out: list[Frame] = []
        pos = 0
        while True:
            eol = _EOL.search(buf, pos)
            if eol is None:
                break
            line = bytes(buf[pos : eol.start()])
            pos = eol.end()
            if self._discarding:
                self._discarding = False
                continue
            if len(line) > MAX_LINE:  # arrived whole: same verdict as when it was split
                self.counts["avr_overlong"] += 1
                continue
            self._line(out, line, wall)
        del buf[:pos]
        if len(buf) > MAX_LINE:
            if not self._discarding:
                self.counts["avr_overlong"] += 1
            self._discarding = True
            buf.clear()
        return out

    def finish(self) -> list[Frame]:
        """End of input: a last line without a line end still counts; a replay releases
        the frame its timer may hold (stream.ReplayTimer)."""
        out = self.feed(b"\n")
        self._discarding = False
        return out + self._release_held()

    def _line(self, out: list[Frame], line: bytes, wall: float) -> None:
        text = line.strip()
        if not text:
            return
        m = _LINE.match(text)
        if m is None:
            self.counts["avr_garbage"] += 1
            return
        prefix, digits = m.group(1), m.group(2)
        if not _HEX.fullmatch(digits):
            self.counts["avr_bad_hex"] += 1
            return
        ticks: int | None = None
        level: int | None = None
        if prefix in b"@%<":
            ticks = real_ticks(int(digits[:_TICK_DIGITS] or b"0", 16))
            digits = digits[_TICK_DIGITS:]
            if prefix == b"<":
                level = int(digits[:_SIGNAL_DIGITS] or b"0", 16)
                digits = digits[_SIGNAL_DIGITS:]
        if len(digits) == _MODE_AC_DIGITS:
            self.counts["mode_ac"] += 1
            return
        if len(digits) not in _FRAME_DIGITS:
            self.counts["avr_bad_length"] += 1
            return
        msg = bytes.fromhex(digits.decode("ascii"))
        if not length_matches_df(msg):
            self.counts["avr_df_length_mismatch"] += 1
            return
        dbfs = signal_dbfs(level) if level is not None else None
        self._emit(out, msg, ticks, dbfs, m.group(2), wall)


class AvrFileSource(RecordingSource):
    """An AVR recording (file, or '-' for standard input).

    Timed by '@'/'%'/'<' ticks when present; untimed '*' lines all get start_time
    (or the last timed frame's time).

    Args:
        path: file path or '-'.
        name: source name for frames and logs (default: the path, or 'stdin').
        start_time: rx_time of the first frame.
    """

    FORMAT = "avr"

    def make_decoder(self) -> AvrDecoder:
        return AvrDecoder(self.name, start_time=self.start_time, counts=self.counts)


class AvrTcpSource(TcpFrameSource):
    """AVR client for readsb/dump1090's port 30002; reconnects until stopped.

    Args:
        host, port: the AVR server.
        name: source name (default 'avr://host:port').
        clock: wall clock giving each frame's rx_time.
        **options: TcpStream timing (connect_timeout, read_timeout, backoff_min,
            backoff_max).
    """

    scheme = "avr"
    default_port = 30002

    def make_decoder(self) -> AvrDecoder:
        return AvrDecoder(self.name, clock=self.clock, counts=self.counts)


KIND = feed_kind(AvrTcpSource, "avr://host:port  (AVR text, readsb/dump1090 port 30002)")
