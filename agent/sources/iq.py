"""Recorded IQ (RTL-SDR UC8 or SC16) from a file or standard input, demodulated in numpy.

Bytes are read in blocks of `block_samples` samples; a read that ends inside a sample
(pipes return what they have) keeps the partial sample for the next read, so only a
truncated *end* of input is lost, and it is counted (`truncated_bytes`), never raised.
Receive times come from the sample count: start_time + sample_index / rate, so a replay
ages tracks exactly as the recording did. Bytes that look like Beast or AVR rather than
samples, with no frame in the first block, are warned about (sniff.FormatCheck).
"""

from __future__ import annotations

import os
import select
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from itertools import chain
from typing import BinaryIO

from agent.demod import DemodOptions
from agent.demod.iq import BYTES_PER_SAMPLE, CONVERTERS
from agent.errors import SourceError
from agent.frame import Frame
from agent.sources.options import iq_demodulator
from agent.sources.sniff import FormatCheck
from agent.verify import FrameVerifier

# How long a read of standard input may block before `stop` is looked at again.
POLL_S = 0.5


# Samples demodulated per block: 0.22 s at 2.4 MS/s. The demodulator has a fixed numpy
# cost per block; measured on bench/demod.py's stream, 524288 took 7 % less CPU than
# 262144 (1048576 no better: the buffers outgrow the cache).
BLOCK_SAMPLES = 524_288


class IqFileSource:
    """A Source over an IQ recording: UC8 (offset 127.5) or SC16 little-endian, I then Q.

    Args:
        path: file path, or "-" for standard input.
        rate: 2.0e6 or 2.4e6 samples per second.
        fmt: "uc8" or "sc16".
        name: source name on frames and in logs.
        block_samples: samples demodulated per block.
        start_time: receive time of the first sample.
        demod: demodulator settings (defaults when None).
        verifier: the pipeline's verifier (OpenContext.verifier): the demodulator
            judges through it and the frames carry its verdicts; None for a private one.
    Raises:
        SourceError: unknown format or rate, or an unreadable file.
    """

    def __init__(
        self,
        path: str,
        rate: float = 2.4e6,
        fmt: str = "uc8",
        name: str = "iq",
        block_samples: int = BLOCK_SAMPLES,
        start_time: float = 0.0,
        demod: DemodOptions | None = None,
        verifier: FrameVerifier | None = None,
    ):
        if fmt not in CONVERTERS:
            raise SourceError(f"IQ format {fmt!r}: expected one of {', '.join(CONVERTERS)}")
        if block_samples < 1:
            raise SourceError("block_samples must be >= 1")
        if path != "-" and not os.access(path, os.R_OK):
            raise SourceError(f"{path}: not found or not readable")
        self.demod = iq_demodulator(rate, name, demod, verifier, start_time)
        self.path = path
        self.name = name
        # A file waits for the pipeline instead of losing frames (agent/handoff.py).
        self.recorded = path != "-"
        self.fmt = fmt
        self.block_bytes = block_samples * BYTES_PER_SAMPLE[fmt]
        # One counter for the source and its demodulator: preambles, rejections, frames.
        self.counts: Counter[str] = self.demod.counts

    @property
    def noise_floor_dbfs(self) -> float | None:
        """The demodulator's noise floor (dBFS), None before the first block."""
        return self.demod.noise_floor_dbfs

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Yield verified frames in receive order until the input ends or `stop` is set."""
        return chain.from_iterable(self.batches(stop))

    def batches(self, stop: threading.Event) -> Iterator[list[Frame]]:
        """The frames of each block read, in receive order (Source.batches)."""
        width = BYTES_PER_SAMPLE[self.fmt]
        pending = b""
        check = FormatCheck(self.name, self.fmt)
        found = 0
        for chunk in self._chunks(stop):
            data = pending + chunk if pending else chunk
            usable = len(data) - len(data) % width
            pending = data[usable:]
            if not usable:
                continue
            self.counts["samples"] += usable // width
            frames = self.demod.process_raw(memoryview(data)[:usable], self.fmt)
            found += len(frames)
            check.feed(chunk, found)
            yield frames
        if pending:
            self.counts["truncated_bytes"] += len(pending)
        if not stop.is_set():
            frames = self.demod.flush()
            check.finish(found + len(frames))
            yield frames

    def _chunks(self, stop: threading.Event) -> Iterator[bytes]:
        if self.path == "-":
            yield from _read_pipe(sys.stdin.buffer, stop, self.block_bytes)
            return
        try:
            with open(self.path, "rb") as fh:
                while not stop.is_set():
                    chunk = fh.read(self.block_bytes)
                    if not chunk:
                        return
                    yield chunk
        except OSError as err:
            raise SourceError(f"{self.path}: {err}") from None


def _read_pipe(stream: BinaryIO, stop: threading.Event, size: int) -> Iterator[bytes]:
    """Blocks from a pipe or terminal, waking every POLL_S to honour `stop`.

    Reads are gathered up to `size` bytes so the demodulator sees full blocks, but a
    block is handed on as soon as the writer pauses, so live input is not delayed.
    """
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a real file (e.g. replaced in tests)
        while not stop.is_set():
            chunk = stream.read(size)
            if not chunk:
                return
            yield chunk
        return
    buf = bytearray()
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if not ready:
            if buf:
                yield bytes(buf)
                buf.clear()
            continue
        chunk = os.read(fd, size - len(buf))
        if not chunk:
            break
        buf += chunk
        if len(buf) >= size:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)
