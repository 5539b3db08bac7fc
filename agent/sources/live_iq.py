"""Live IQ plumbing shared by the RTL-SDR and rtl_tcp sources.

UC8 bytes arrive in transfers (librtlsdr) or recv() chunks (rtl_tcp) at wall-clock
times; `LiveIq` gathers them into blocks the demodulator likes, gives frames receive
times anchored on the wall clock, and hands the adaptive-gain policy what it observes.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from agent.demod import DemodOptions
from agent.frame import Frame
from agent.sources.gain import AdaptiveGain, GainStep
from agent.sources.options import iq_demodulator
from agent.sources.stream import Clock
from agent.verify import FrameVerifier

# Samples gathered before demodulating (LiveIq.feed): librtlsdr's transfers and rtl_tcp's
# recv() chunks are smaller than the demodulator likes, and its per-call cost makes that
# expensive (CPU per IQ second on modes1_2400, measured before later speed-ups: 57 ms in
# 128k-sample blocks, 41 ms in 512k). 512k samples are 0.22 s at 2.4 MS/s, a delay
# nothing downstream notices.
FEED_SAMPLES = 524_288
# Sample clock vs wall clock disagreement that triggers a re-anchor (seconds).
MAX_SKEW_S = 0.25


class LiveIq:
    """Live UC8 bytes -> frames with wall-clock receive times, plus adaptive-gain input.

    Shared by the RTL-SDR and rtl_tcp sources. One Demodulator lives as long as the
    source (the verifier it judges through remembers confirmed addresses across
    reopens); what is fed after a gap is just a later block, re-anchored in time.
    Not thread-safe.

    Args:
        rate: samples per second.
        name: source name on frames.
        clock: wall clock (injectable).
        max_skew_s: re-anchor when sample time and arrival time differ by more.
        demod: demodulator settings.
        verifier: the pipeline's verifier (OpenContext.verifier), or None for a
            private one.
    Raises:
        SourceError: an unsupported rate or repair setting.
    """

    def __init__(
        self,
        rate: float,
        name: str,
        clock: Clock,
        max_skew_s: float = MAX_SKEW_S,
        demod: DemodOptions | None = None,
        verifier: FrameVerifier | None = None,
    ):
        self.demod = iq_demodulator(rate, name, demod, verifier)
        self.counts: Counter[str] = self.demod.counts
        self.rate = rate
        self.clock = clock
        self.max_skew_s = max_skew_s
        self.gain: AdaptiveGain | None = None
        self._fed = 0  # samples given to the demodulator
        self._anchored = False
        self._last_time = float("-inf")
        self._pending = b""
        self._gathered: list[bytes] = []
        self._gathered_bytes = 0
        self._arrival = 0.0
        self._carry: list[Frame] = []  # decided from a stream that has ended

    def restart(self) -> None:
        """A new stream (reopen, reconnect): re-anchor time on its first block.

        What the last stream left gathered is demodulated now (its frames come with
        the next feed), not dropped.
        """
        self._carry += self.drain()
        self._carry += self._settle(self.demod.new_epoch())  # later ticks: a new clock
        self._anchored = False
        self._pending = b""
        if self.gain is not None:
            self.gain.restart(self._fed / self.rate)

    @property
    def gathered_samples(self) -> int:
        """Samples received but not yet demodulated (a block is still being gathered).

        At a stop they are left undemodulated (not wanted, not lost), so anyone
        accounting for every buffer received counts them apart.
        """
        return self._gathered_bytes // 2

    def feed(
        self, data: bytes, arrival: float, dropped: int = 0
    ) -> tuple[list[Frame], GainStep | None]:
        """Gather `data` (UC8) that ended arriving at `arrival` (wall time); once
        FEED_SAMPLES are gathered, the frames decided (and any gain step).

        `dropped`: samples lost just before `data` (buffers the reader could not queue).
        What was gathered is demodulated first; the lost samples still count in the
        sample clock, so ticks and receive times after the gap stay right.
        """
        if dropped:
            self._carry += self.drain()
            self._carry += self._settle(self.demod.skip_samples(dropped))
            self._fed += dropped
            self._pending = b""  # the byte stream does not continue across the gap
        self._gathered.append(data)
        self._gathered_bytes += len(data)
        self._arrival = arrival
        carry, self._carry = self._carry, []
        if self._gathered_bytes < 2 * FEED_SAMPLES:
            return carry, None
        frames, step = self._demodulate()
        return carry + frames, step

    def _settle(self, frames: list[Frame]) -> list[Frame]:
        """The demodulator's frames (judged already, through the shared verifier's
        gate) in time order."""
        out = []
        for f in frames:
            if f.rx_time < self._last_time:  # a backward re-anchor: keep time monotonic
                f = dataclasses.replace(f, rx_time=self._last_time)
            self._last_time = f.rx_time
            out.append(f)
        return out

    def drain(self) -> list[Frame]:
        """Frames from whatever is gathered (a stream's end); no gain step."""
        return self._demodulate()[0] if self._gathered else []

    def _demodulate(self) -> tuple[list[Frame], GainStep | None]:
        data = b"".join(self._gathered)
        arrival = self._arrival
        self._gathered.clear()
        self._gathered_bytes = 0
        if self._pending:
            data = self._pending + data
        usable = len(data) & ~1
        self._pending = data[usable:]
        if not usable:
            return [], None
        n = usable // 2
        expected_end = self.demod.start_time + (self._fed + n) / self.rate
        skew = arrival - expected_end
        if not self._anchored or abs(skew) > self.max_skew_s:
            if self._anchored:
                self.counts["clock_resync"] += 1
            self.demod.start_time += skew
            self._anchored = True
        self._fed += n
        self.counts["samples"] += n
        out = self._settle(self.demod.process_raw(memoryview(data)[:usable]))
        step = None
        if self.gain is not None:
            levels = (f.signal_dbfs for f in out)
            step = self.gain.observe(levels, self.demod.noise_floor_dbfs, self._fed / self.rate)
        return out, step
