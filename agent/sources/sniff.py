"""Which format a recording's bytes look like, to say so when the one given is wrong.

A Beast file replayed as AVR, or IQ samples as Beast, decodes to nothing, and without
a word the command looks as if the sky were empty. The sources hand the first bytes
they read (at most SNIFF_BYTES) and how many well-formed records those gave to a
FormatCheck; when none, it warns once, naming what the bytes look like:

- Beast: 0x1a followed by a record type 0x31-0x34, about one per record (a record is
  11 to 23 bytes; in noise the pair comes once in ~16 KiB);
- AVR: text lines `*HEX;` or `@TICKSHEX;` (also ':', '%', '<');
- IQ: anything else binary; SC16 when the high byte of most 16-bit words is near zero
  (small signed samples), else UC8 (bytes around 127.5).
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

# Bytes looked at before judging: a second of a busy Beast feed, enough lines of AVR.
SNIFF_BYTES = 65536
# Beast record starts per byte that make a Beast stream (one per 64 bytes is a third of
# a real stream's density; noise gives one per ~16 KiB).
_BEAST_BYTES_PER_RECORD = 64
_BEAST_START = re.compile(rb"\x1a[\x31-\x34]")
_AVR_LINE = re.compile(rb"[*:@%<][0-9A-Fa-f]+;")
_LINE_END = re.compile(rb"[\r\n]+")
# Lines sampled for AVR, and the share that must be frame lines.
_AVR_LINES = 200
_AVR_SHARE = 0.5
# SC16: the share of high bytes within this distance of zero.
_SC16_NEAR_ZERO = 8
_SC16_SHARE = 0.6
# Fewer bytes than this say nothing about IQ (a few samples).
_IQ_MIN_BYTES = 256
# Printable share above which bytes are text, not samples.
_TEXT_SHARE = 0.95
# The byte classes counted, as bytes.translate deletion sets: counted in C (a generator
# over 64 KiB cost about 10 ms of every recording's start-up).
_PRINTABLE = bytes([*range(32, 127), 9, 10, 13])
_NEAR_ZERO = bytes([*range(_SC16_NEAR_ZERO + 1), *range(256 - _SC16_NEAR_ZERO, 256)])

DESCRIPTIONS = {
    "beast": "Beast (0x1a records)",
    "avr": "AVR text (lines starting with * or @)",
    "uc8": "IQ samples (uc8)",
    "sc16": "IQ samples (sc16)",
}
IQ_GUESSES = ("uc8", "sc16")


def guess_format(head: bytes) -> str | None:
    """'beast', 'avr', 'uc8' or 'sc16' for the first bytes of a recording; None: no idea."""
    if not head:
        return None
    if len(_BEAST_START.findall(head)) >= max(2, len(head) // _BEAST_BYTES_PER_RECORD):
        return "beast"
    lines = [ln.strip() for ln in _LINE_END.split(head)[:_AVR_LINES] if ln.strip()]
    if lines and sum(bool(_AVR_LINE.match(ln)) for ln in lines) >= _AVR_SHARE * len(lines):
        return "avr"
    if _is_text(head) or len(head) < _IQ_MIN_BYTES:
        return None
    high = head[1::2]
    near_zero = _count(high, _NEAR_ZERO)
    return "sc16" if near_zero >= _SC16_SHARE * len(high) else "uc8"


class FormatCheck:
    """Looks once at the first SNIFF_BYTES of a recording read as `fmt`.

    Beast and AVR: no well-formed record in them is a warning (the likely format named,
    or "damaged" when the bytes do look like `fmt`). IQ: a quiet sky gives no frame for
    a while, so only bytes that look like another format are a warning.

    Args:
        name: the source's name (the path) for the message.
        fmt: the format the recording is read as (uc8, sc16, beast, avr).
    """

    def __init__(self, name: str, fmt: str):
        self.name = name
        self.fmt = fmt
        self.guess: str | None = None
        self.warned = False
        self._head = bytearray()
        self._done = False

    def feed(self, chunk: bytes, valid: int) -> None:
        """After each read: `valid` is how many well-formed records the reads gave."""
        if self._done:
            return
        self._head += chunk[: SNIFF_BYTES - len(self._head)]
        if len(self._head) >= SNIFF_BYTES:
            self._judge(valid)

    def finish(self, valid: int) -> None:
        """End of input before SNIFF_BYTES: judge what there was."""
        if not self._done and self._head:
            self._judge(valid)

    def _judge(self, valid: int) -> None:
        self._done = True
        head = bytes(self._head)
        self._head = bytearray()
        self.guess = guess = guess_format(head)
        if valid:
            return
        iq = self.fmt in IQ_GUESSES
        if iq and (guess == self.fmt or (guess is None and not _is_text(head))):
            return  # IQ without a frame yet: a quiet sky, not a wrong format
        if guess is None:
            what = "match no known format"
        elif guess != self.fmt:
            what = f"look like {DESCRIPTIONS[guess]}: try format {guess}"
        else:
            what = f"look like {DESCRIPTIONS[guess]} but none is whole: damaged?"
        self.warned = True
        log.warning(
            "%s: no valid %s %s in the first %d bytes; the bytes %s",
            self.name,
            self.fmt,
            "frame" if iq else "record",
            len(head),
            what,
        )


def _is_text(data: bytes) -> bool:
    return _count(data, _PRINTABLE) >= _TEXT_SHARE * len(data)


def _count(data: bytes, members: bytes) -> int:
    """How many bytes of `data` are among `members`."""
    return len(data) - len(data.translate(None, members))
