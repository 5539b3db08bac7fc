"""Magnitude blocks (and I/Q at 2.0 MS/s) in, verified Mode S frames out.

Each buffer (blocks.py: the carried-over tail, then the new block) goes through:
    noise.floor                the local noise floor the preamble tests measure against
    candidates.CandidateSearch stages 1-3: preamble screen, phase scores, DF check
    decide.BitDecider          stage 4: bits, CRC syndromes, classes, repair, retries
    verify (batch rules)       address/parity decodes whose address cannot be known out
    resolve.Resolver           stage 5: one decode per preamble, overlaps in time order,
                               the shared FrameVerifier's counts and address memory

Cheapest first, so that per-candidate Python only ever sees a handful. What is
acceptable (formats, classes, addresses, repaired bits) is agent/verify.py's to say.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from agent import verify
from agent.demod import noise, repair
from agent.demod.blocks import Blocks
from agent.demod.candidates import CandidateSearch
from agent.demod.decide import BitDecider, Decodes, Pairs
from agent.demod.iq import IQ_CONVERTERS
from agent.demod.options import DemodOptions
from agent.demod.resolve import SUB, Batch, Resolver
from agent.demod.timing import Timing
from agent.frame import Frame
from agent.verify import INVALID, FrameVerifier


class Demodulator:
    """Mode S demodulator for 2.0 or 2.4 MS/s magnitude streams.

    Not thread-safe: feed blocks from one thread, in order. The verifier is shared state
    (recently confirmed addresses); pass the pipeline's own to keep one view of them.

    Every frame carries its arrival on a 12 MHz counter (Frame.ticks_12mhz, as Beast
    and dump1090's --mlat; resolve.Resolver.choose) counted from the first sample.
    A live source keeps it true: skip_samples(n) for n samples it dropped, new_epoch()
    when it reopens the receiver.

    Args:
        sample_rate: 2.0e6 or 2.4e6.
        verifier: CRC/address gate; a private one is created when None.
        source: name put on every Frame.
        start_time: receive time of the first sample (seconds).
        repair_bits: most bits repaired in one frame (agent/demod/repair.py). 1
            repairs one bit in DF11/17/18 (readsb's default); 2 and 3 also repair two
            or three bits in DF17/18 when all are among the least certain (only in
            weak replies), about 0.6 and 1.0 dB more sensitive at 2.4 MS/s for more
            false frames (bench/demod.py measures each; 3 is DemodOptions' default).
            In weak replies a DF one bit from DF17/18 may be that bit, counted in
            repair_bits.
        retry_weak: at rates where slicing decides first (2.4 MS/s), decide weak
            replies that it could not decode again with the trellis: about 0.2-0.3 dB
            more sensitive for about a fifth more CPU on a busy stream (bench/demod.py).
            At 2.0 MS/s the trellis decides every reply regardless.
    Raises:
        ValueError: unsupported sample rate or repair_bits.

    At decide.COHERENT_RATES, process_raw (or process with `iq`) also has the replies that
    the magnitude trellis could not decode (weak ones, and strong ones that read as
    DF11/17/18) decided from the complex samples (coherent.py); magnitudes alone still
    work, less sensitively.
    """

    def __init__(
        self,
        sample_rate: float = 2.4e6,
        *,
        verifier: FrameVerifier | None = None,
        source: str = "iq",
        start_time: float = 0.0,
        repair_bits: int = DemodOptions.repair_bits,
        retry_weak: bool = False,
    ):
        if not 1 <= repair_bits <= repair.MAX_BITS:
            raise ValueError(f"repair_bits must be 1 to {repair.MAX_BITS}")
        self.repair_bits = repair_bits
        self.retry_weak = retry_weak
        self.timing = Timing.for_rate(sample_rate)
        self.sample_rate = float(sample_rate)
        self.verifier = verifier if verifier is not None else FrameVerifier()
        self.source = source
        self.start_time = start_time
        self.counts: Counter[str] = Counter()
        self._blocks = Blocks(self.timing.window)
        self._noise = noise.NoiseLevel()
        self._decider = BitDecider(self.timing, repair_bits, retry_weak, self.counts)
        self._search = CandidateSearch(self.timing, self._decider, self.counts)
        self._resolver = Resolver(self.timing, self.verifier, self.counts, source)

    @property
    def noise_floor_dbfs(self) -> float | None:
        """Median sample magnitude in dBFS (smoothed over blocks); None before any input."""
        return self._noise.dbfs

    @property
    def wants_iq(self) -> bool:
        """True where complex samples decide better than magnitudes (COHERENT_RATES)."""
        return self._decider.coherent is not None

    def process_raw(self, raw: bytes | bytearray | memoryview, fmt: str = "uc8") -> list[Frame]:
        """Demodulate raw interleaved I/Q ("uc8" or "sc16"), whole samples only.

        What sources call: it converts to magnitudes, and to complex samples too where
        the demodulator decides in I/Q.
        """
        iq = IQ_CONVERTERS[fmt](raw) if self.wants_iq else None
        return self._process(*self._blocks.join_raw(raw, fmt), iq)

    def process(self, mag: np.ndarray, iq: np.ndarray | None = None) -> list[Frame]:
        """Demodulate one block of magnitudes; returns the frames decided so far.

        Frames near the end of the block are held back until the next call (or flush).

        Args:
            mag: float32 magnitudes (1.0 = full scale).
            iq: the same samples as complex64, used where wants_iq; give it with
                every block or with none (ValueError otherwise).
        """
        mag = np.asarray(mag, dtype=np.float32)
        return self._process(*self._blocks.join(mag), iq)

    def flush(self) -> list[Frame]:
        """Decide everything still held back; call at end of input.

        A block given after it starts a new stretch of samples (nothing carried over).
        """
        return self._end_stretch(0)

    def skip_samples(self, n: int) -> list[Frame]:
        """Count `n` samples that were lost (dropped USB buffers) without their data.

        The frames held back are decided now (the samples after the gap do not continue
        them); later frames' ticks and receive times count the lost samples, as the
        receiver's own counter would have. Returns the frames decided.
        """
        if n < 0:
            raise ValueError("cannot skip a negative number of samples")
        return self._end_stretch(n)

    def new_epoch(self) -> list[Frame]:
        """Start a new stream (the receiver was reopened or reconnected).

        The frames held back are decided now, with the old epoch; later frames carry
        the next Frame.ticks_epoch, whose ticks are not comparable with earlier ones
        (the counter goes on from the last sample; the time of the gap is unknown).
        Returns the frames decided.
        """
        frames = self._end_stretch(0)
        self._resolver.epoch += 1
        return frames

    def _end_stretch(self, skip: int) -> list[Frame]:
        t = self.timing
        # The block slicer reads a few samples past a long reply's end: zeros there.
        buf = self._blocks.last(t.window - t.span)
        frames = self._run(buf, final=True) if buf is not None else []
        self._blocks.clear(skip)
        return frames

    def _process(self, buf: np.ndarray, ntail: int, iq: np.ndarray | None) -> list[Frame]:
        """process() of the block buf[ntail:], already behind the tail in buf."""
        block = buf[ntail:]
        self._blocks.join_iq(iq if self.wants_iq else None, block.size)
        if block.size == 0:
            return []
        self._noise.update(block)
        return self._run(buf, final=False)

    def _run(self, buf: np.ndarray, *, final: bool) -> list[Frame]:
        """Decide the starts of `buf` that can be decided now (all of them if final)."""
        blocks = self._blocks
        fit = buf.size - self.timing.window  # starts whose long reply lies wholly inside buf
        decide = fit if final else blocks.decidable(buf.size)
        frames: list[Frame] = []
        if fit > 0:
            frames = self._resolver.resolve(self._candidates(buf, fit, decide), decide)
        if not final:
            blocks.carry(buf, decide)
        blocks.iq = None
        return frames

    def _candidates(self, buf: np.ndarray, fit: int, decide: int) -> Batch | None:
        """Stages 1-4: per preamble cluster, the best (start, phase) decode that could pass."""
        blocks = self._blocks
        pairs = self._search.find(buf, noise.floor(buf), fit, blocks.lo, decide)
        if pairs is None:
            return None
        decodes = self._decider.decide(buf, blocks.iq, pairs)
        self._count(pairs, decodes)
        first = int(pairs.s[pairs.r[0]]) + blocks.base
        now = self.start_time + first * SUB / (SUB * self.sample_rate)
        d = decodes
        verify.refuse_unknown_addresses(self.verifier, d.kind, d.df, d.syn, d.msgs, now)
        return self._resolver.choose(pairs, decodes, blocks.lo, blocks.base, self.start_time)

    def _count(self, pairs: Pairs, decodes: Decodes) -> None:
        """Candidates this call decides, and those of them no pair decoded."""
        mine = pairs.mine
        self.counts["candidates"] += int(np.count_nonzero(mine))
        passed = np.zeros(mine.size, dtype=bool)
        passed[pairs.r[decodes.kind != INVALID]] = True
        self.counts["rejected_crc"] += int(np.count_nonzero(mine & ~passed))
