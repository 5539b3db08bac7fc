"""The demodulator's settings, apart from the demodulator: the command line, the config
and `adsb-agent check` read them without importing numpy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)  # no slots: the class attributes are the defaults
class DemodOptions:
    """How hard the demodulator works on weak replies (see Demodulator's arguments).

    Set per IQ source from its URL (`repair=1..3`, `retry=0|1`) or on the command line.
    The default repairs up to three bits: 1.0-1.4 dB more sensitive than readsb's
    one-bit repair at 2.4 MS/s for a few per cent more CPU (bench/demod.py). Its false
    matches are rare (bench/demod.py counts them) and harmless downstream: a frame
    repaired in more than one bit only counts for an address another frame has
    confirmed (agent/verify.py).
    """

    repair_bits: int = 3
    retry_weak: bool = False
