"""Mode S / ADS-B 1090 MHz demodulation of IQ magnitude streams (numpy).

iq.py          raw UC8 / SC16 bytes -> magnitude
timing.py      half-bit positions and matched-filter taps per rate and phase
preamble.py    candidate starts: vectorised screen, then SNR against local noise
slicer.py      bit decisions for many candidates at once
trellis.py     bit decisions that account for the neighbouring bit (straddled pulses)
repair.py      bit-error repair from CRC syndromes, guided by the bit margins
coherent.py    bit decisions from I/Q (2.0 MS/s retries)
blocks.py      joining blocks: the carried-over tail, then the new block
noise.py       the noise floor the preamble tests use, and the level reported
candidates.py  stages 1-3: preamble screen and scores, DF check -> (start, phase) pairs
decide.py      stage 4: bits of those pairs, CRC syndromes and classes, repair
resolve.py     stage 5: one decode per preamble, overlaps, the verifier's counts
demodulator.py Demodulator: the stages above in order, blocks in, verified Frames out
options.py     DemodOptions, its settings (no numpy: the command line and config read it)
heap.py        the process-wide malloc setting the demodulator's blocks need

`Demodulator` is imported on first use (PEP 562), so that `adsb-agent --help`, `check`
and the config import this package without numpy (1.8 s on a Pi under emulation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.demod.options import DemodOptions

if TYPE_CHECKING:
    from agent.demod.demodulator import Demodulator

__all__ = ["DemodOptions", "Demodulator"]


def __getattr__(name: str) -> Any:
    if name == "Demodulator":
        from agent.demod.demodulator import Demodulator

        return Demodulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
