"""Joining blocks: each buffer is the carried-over tail of the last one, then the new block.

The tail is long enough that every reply, and every candidate that could overlap it, is
seen whole in one buffer; decisions are only taken for starts far enough from the buffer
end, so the output is the same however the input is split into blocks
(tests/test_demod.py checks this). The buffers are kept across calls: a fresh one per
block would be allocated and faulted in again every time.
"""

from __future__ import annotations

import numpy as np

from agent.demod.iq import BYTES_PER_SAMPLE, CONVERTERS
from agent.demod.noise import NOISE_WINDOW

# Samples of already-decided context carried into the next buffer (> a phase cluster).
CONTEXT = 16


# Room a grown buffer leaves beyond what is needed (1/GROWTH_SLACK of it): the tail
# (a few thousand samples) then fits behind the next block of the same size, and blocks
# of slowly growing sizes still grow the buffer only now and then. (Doubling it kept
# the buffer at twice a block: 2 MB more at 2.4 MS/s, and as much again of I/Q.)
GROWTH_SLACK = 8


def _reserve(store: np.ndarray, tail: np.ndarray, need: int) -> np.ndarray:
    """`store`, or a larger one with `tail` copied to its front, so that `need`
    samples fit."""
    if store.size >= need:
        return store
    grown = np.empty(
        max(need + need // GROWTH_SLACK, store.size + store.size // GROWTH_SLACK), dtype=store.dtype
    )
    grown[: tail.size] = tail
    return grown


class Blocks:
    """The magnitude buffer (and I/Q beside it, same indices) of one stream.

    Not thread-safe. Attributes:
        base: absolute sample index of the buffer's first sample (samples skipped
            over, see clear(), included).
        lo: first start sample of the buffer not decided by an earlier call.
        iq: the buffer's I/Q while it is demodulated (None: magnitudes only).

    Args:
        window: samples a candidate reads from its start (Timing.window).
    """

    def __init__(self, window: int):
        # Decide a candidate only when everything that could overlap it is in the buffer.
        self.keep = 2 * window + CONTEXT
        self.base = 0
        self.lo = 0
        # Absolute index where the samples became continuous (0, or after a clear()):
        # noise windows are aligned to it.
        self._origin = 0
        self.iq: np.ndarray | None = None
        self._tail = np.zeros(0, dtype=np.float32)  # a view of the front of _store
        self._store = np.zeros(0, dtype=np.float32)
        self._iq_mode: bool | None = None  # whether blocks come with I/Q, once known
        self._iq_tail = np.zeros(0, dtype=np.complex64)
        self._iq_store = np.zeros(0, dtype=np.complex64)

    def join_raw(self, raw: bytes | bytearray | memoryview, fmt: str) -> tuple[np.ndarray, int]:
        """The buffer with raw I/Q's magnitudes behind the tail, and the tail's length.

        Converted straight into the buffer: no block-sized array to allocate, fault in
        and copy there.
        """
        ntail = self._tail.size
        buf = self._grow(ntail + memoryview(raw).nbytes // BYTES_PER_SAMPLE[fmt])
        CONVERTERS[fmt](raw, out=buf[ntail:])
        return buf, ntail

    def join(self, mag: np.ndarray) -> tuple[np.ndarray, int]:
        """The buffer with float32 magnitudes behind the tail, and the tail's length."""
        ntail = self._tail.size
        buf = self._grow(ntail + mag.size)
        buf[ntail:] = mag
        return buf, ntail

    def join_iq(self, iq: np.ndarray | None, n: int) -> None:
        """Put the block's I/Q (n samples, None: none) behind the I/Q tail, into `iq`.

        Raises:
            ValueError: I/Q with some blocks and not others, or not n samples.
        """
        if n == 0:
            return
        use = iq is not None
        if self._iq_mode is None:
            self._iq_mode = use
        elif use != self._iq_mode:
            raise ValueError("I/Q must come with every block or with none")
        if iq is None:
            return
        if np.shape(iq) != (n,):
            raise ValueError("iq and mag must hold the same samples")
        ntail = self._iq_tail.size
        self._iq_store = _reserve(self._iq_store, self._iq_tail, ntail + n)
        buf = self._iq_store[: ntail + n]
        buf[ntail:] = np.asarray(iq, dtype=np.complex64)
        self.iq = buf

    def decidable(self, n: int) -> int:
        """Starts below this in an n-sample buffer are decided now, the rest next time:
        those with everything that could overlap them in the buffer, inside whole
        noise windows."""
        return min(n - self.keep, n // NOISE_WINDOW * NOISE_WINDOW)

    def carry(self, buf: np.ndarray, decide: int) -> None:
        """Keep the end of `buf` (starts from `decide` on, and context) as the tail."""
        n = buf.size
        # Keep CONTEXT samples already decided so that the next call sees the same
        # neighbourhood (phase clusters) around its first undecided start.
        # The tail starts on an absolute noise-window boundary, one whole window
        # before the first undecided start (which sees CONTEXT samples back), so
        # every floor is recomputed from the same samples whatever the block sizes.
        first = self.base - self._origin + max(decide, 0) - CONTEXT
        cut = max((first // NOISE_WINDOW - 1) * NOISE_WINDOW - (self.base - self._origin), 0)
        self.lo = max(decide, 0) - cut
        if buf.base is self._store:  # the tail moves to the front of the buffer
            self._store[: n - cut] = buf[cut:]  # (overlap-safe: numpy copies via a temporary)
            self._tail = self._store[: n - cut]
        else:
            self._tail = buf[cut:].copy()
        iq = self.iq
        if iq is not None:
            self._iq_store[: n - cut] = iq[cut:]
            self._iq_tail = self._iq_store[: n - cut]
        self.base += cut

    def last(self, pad: int) -> np.ndarray | None:
        """The tail with `pad` zero samples behind it (and its I/Q into `iq`), to decide
        everything at the end of input; None when there is no tail."""
        if self._tail.size == 0:
            return None
        if self._iq_mode:
            self.iq = np.concatenate((self._iq_tail, np.zeros(pad, dtype=np.complex64)))
        return np.concatenate((self._tail, np.zeros(pad, dtype=np.float32)))

    def clear(self, skip: int = 0) -> None:
        """Drop the tail (after last()): the next block starts `skip` samples after it
        ended, as the start of a new continuous stretch."""
        self.base += self._tail.size + skip
        self._origin = self.base
        self.lo = 0
        self._tail = np.zeros(0, dtype=np.float32)
        self._iq_tail = np.zeros(0, dtype=np.complex64)
        self.iq = None

    def _grow(self, need: int) -> np.ndarray:
        """The first `need` samples of the magnitude buffer, the tail in front; the
        caller writes the block behind the tail."""
        self._store = _reserve(self._store, self._tail, need)
        return self._store[:need]
