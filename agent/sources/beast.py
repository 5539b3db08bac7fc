"""Mode-S Beast binary input: readsb/dump1090 port 30005, Beast serial receivers, recordings.

Wire format (one record):
    0x1a, type, 6-byte big-endian 12 MHz tick count, 1 signal byte, message
with type '1' (0x31) Mode A/C, 2 bytes; '2' (0x32) Mode S short, 7 bytes; '3' (0x33)
Mode S long, 14 bytes; '4' (0x34) Radarcape status, 14 bytes. Radarcape also sends '5'
(0x35), a 21-byte position record with no tick/signal header. Every 0x1a after the type
byte is sent twice, so an undoubled 0x1a always starts a record: that is how a reader
that lost its place (junk, a record cut short, joining mid-stream) finds the next one.
Only Mode S short and long become frames; the rest is counted and skipped.
"""

from __future__ import annotations

from agent.frame import Frame
from agent.sources.stream import (
    FrameDecoder,
    RecordingSource,
    length_matches_df,
    real_ticks,
    signal_dbfs,
)
from agent.sources.tcp import TcpFrameSource, feed_kind

ESC = 0x1A
TYPE_MODE_AC = 0x31
TYPE_SHORT = 0x32
TYPE_LONG = 0x33
TYPE_STATUS = 0x34
TYPE_POSITION = 0x35
# Unescaped bytes after the type byte: 6 ticks + 1 signal + message, except the
# Radarcape position record which has no header.
_HEADER = 7
_BODY = {
    TYPE_MODE_AC: _HEADER + 2,
    TYPE_SHORT: _HEADER + 7,
    TYPE_LONG: _HEADER + 14,
    TYPE_STATUS: _HEADER + 14,
    TYPE_POSITION: 21,
}
# Returned by _unescape when the buffer ends before the record does.
_NEED_MORE = -1


def _unescape(buf: bytearray, start: int, size: int) -> tuple[bytes | None, int]:
    """Read `size` unescaped bytes of a record body beginning at buf[start].

    Returns (body, index after it) when complete; (None, _NEED_MORE) when the buffer
    ends first; (None, k) when an undoubled 0x1a at buf[k] starts a new record, i.e.
    this one was cut short.
    """
    body = bytearray()
    k, n = start, len(buf)
    while len(body) < size:
        stop = k + size - len(body)
        esc = buf.find(ESC, k, stop)
        if esc < 0:
            if stop > n:
                return None, _NEED_MORE
            body += buf[k:stop]
            return bytes(body), stop
        body += buf[k:esc]
        if esc + 1 >= n:
            return None, _NEED_MORE
        if buf[esc + 1] != ESC:
            return None, esc
        body.append(ESC)
        k = esc + 2
    return bytes(body), k


class BeastDecoder(FrameDecoder):
    """Incremental Beast decoder: feed it reads of any size, get complete frames back.

    Not thread-safe; one per connection or file. Lengths are checked against the DF
    (a long DF in a short record is dropped), CRC is not: that is the verifier's job.

    Counters: frames, mode_ac, beast_status (status/position records skipped),
    beast_resync (times sync was lost), beast_junk_bytes, beast_bad_type (0x1a followed
    by an unknown type byte), beast_truncated (record cut short by the next one),
    beast_df_length_mismatch, beast_partial_dropped (unfinished record at reset/EOF),
    duplicate_records (a record repeated with its ticks: a doubled log, see
    stream.RecordMemory).

    Args:
        source: name put in every Frame.
        clock: wall clock for live input, read once per feed().
        start_time: replay mode when set: rx_time comes from the recording's ticks,
            the first timed frame at start_time (see stream.ReplayTimer).
        counts: counter to add to (the owning source's), a new one when None.
    """

    PARTIAL_COUNTER = "beast_partial_dropped"
    VALID_COUNTERS = ("frames", "mode_ac", "beast_status", "duplicate_records")

    def _clear_sync(self) -> None:
        # True while skipping junk, so one lost-sync episode counts one resync.
        self._lost = False

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by `data`, in order; the unfinished tail is kept."""
        buf = self._buf
        buf += data
        wall = 0.0 if self._replay is not None else self._clock()
        out: list[Frame] = []
        i, n = 0, len(buf)
        while i < n:
            j = buf.find(ESC, i)
            if j < 0:
                self._skip(n - i)
                i = n
                break
            if j > i:
                self._skip(j - i)
                i = j
            if j + 1 >= n:
                break  # a lone 0x1a at the end: wait for the type byte
            kind = buf[j + 1]
            if kind == ESC:  # an escaped data byte: we are inside a record we missed
                self._skip(2)
                i = j + 2
                continue
            size = _BODY.get(kind)
            if size is None:
                self.counts["beast_bad_type"] += 1
                self._skip(1)
                i = j + 1
                continue
            body, end = _unescape(buf, j + 2, size)
            if body is None:
                if end == _NEED_MORE:
                    break
                self.counts["beast_truncated"] += 1
                self._skip(end - j)
                i = end
                continue
            i = end
            self._lost = False
            self._record(out, kind, body, wall)
        del buf[:i]
        return out

    def finish(self) -> list[Frame]:
        """End of input. A Beast record is emitted as soon as it is complete, so what
        is left is a cut-off record: counted and dropped. A replay releases the frame
        its timer may hold (stream.ReplayTimer)."""
        self.reset()
        return self._release_held()

    def _skip(self, nbytes: int) -> None:
        self.counts["beast_junk_bytes"] += nbytes
        if not self._lost:
            self._lost = True
            self.counts["beast_resync"] += 1

    def _record(self, out: list[Frame], kind: int, body: bytes, wall: float) -> None:
        if kind == TYPE_MODE_AC:
            self.counts["mode_ac"] += 1
            return
        if kind not in (TYPE_SHORT, TYPE_LONG):
            self.counts["beast_status"] += 1
            return
        msg = body[_HEADER:]
        if not length_matches_df(msg):
            self.counts["beast_df_length_mismatch"] += 1
            return
        ticks = real_ticks(int.from_bytes(body[:6], "big"))
        self._emit(out, msg, ticks, signal_dbfs(body[6]), body, wall)


class BeastFileSource(RecordingSource):
    """A Beast recording (file, or '-' for standard input), timed by its own ticks.

    Args:
        path: file path or '-'.
        name: source name for frames and logs (default: the path, or 'stdin').
        start_time: rx_time of the first timed frame; the rest follow the ticks.
    """

    FORMAT = "beast"

    def make_decoder(self) -> BeastDecoder:
        return BeastDecoder(self.name, start_time=self.start_time, counts=self.counts)


class BeastTcpSource(TcpFrameSource):
    """Beast client for readsb/dump1090's port 30005; reconnects until stopped.

    Args:
        host, port: the Beast server.
        name: source name (default 'beast://host:port').
        clock: wall clock giving each frame's rx_time.
        **options: TcpStream timing (connect_timeout, read_timeout, backoff_min,
            backoff_max).
    """

    scheme = "beast"
    default_port = 30005

    def make_decoder(self) -> BeastDecoder:
        return BeastDecoder(self.name, clock=self.clock, counts=self.counts)


KIND = feed_kind(BeastTcpSource, "beast://host:port  (Beast binary, readsb/dump1090 port 30005)")
