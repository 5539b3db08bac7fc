"""Random pulses at 2.0 MS/s (interference, a broken front end): bounded work, no frames.

The work per buffer is capped (candidates.MAX_STARTS_PER_MSAMPLE, decide.
MAX_RETRIES_PER_MSAMPLE) and the trellis arrays are built in chunks (decide.
CHUNK_PAIRS); the caps lie well above what real recordings need, which this also checks.
"""

from __future__ import annotations

import tracemalloc

from agent.demod import Demodulator
from agent.verify import FrameVerifier
from bench.hostile import random_pulses
from tests.conftest import shared_data


def test_random_pulses_cost_bounded_memory_and_give_no_frames() -> None:
    raw = random_pulses(seconds=0.6)
    demod = Demodulator(2.0e6)
    demod.process_raw(raw[:4096])  # models and tables built outside the measurement
    tracemalloc.start()
    try:
        frames = demod.process_raw(raw) + demod.flush()  # one 0.6 s buffer
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Before the caps: 1 GB for this buffer (2 GB for 1.2 s), growing with its length.
    assert peak < 300 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert demod.counts["preambles_skipped"] > 0 and demod.counts["retries_skipped"] > 0
    gate = FrameVerifier()
    assert not [f for f in frames if f.df in (17, 18) and gate.check(f).accepted]


def test_real_recordings_never_reach_the_caps() -> None:
    for name, rate in (("phwl_x-1.uc8", 2.0e6), ("modes1.bin", 2.0e6), ("modes1_2400.uc8", 2.4e6)):
        raw = shared_data(f"iq/{name}").read_bytes()
        demod = Demodulator(rate)
        step = 2 * 524_288
        for k in range(0, len(raw), step):
            demod.process_raw(raw[k : k + step])
        demod.flush()
        assert demod.counts["preambles_skipped"] == 0 and demod.counts["retries_skipped"] == 0
        assert demod.counts["candidates"] > 0, name
