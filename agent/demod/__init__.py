"""Mode S / ADS-B 1090 MHz demodulation of IQ magnitude streams (numpy).

iq.py          raw UC8 / SC16 bytes -> magnitude
timing.py      half-bit positions and matched-filter taps per rate and phase
preamble.py    candidate starts: vectorised screen, then SNR against local noise
slicer.py      bit decisions for many candidates at once
trellis.py     bit decisions that account for the neighbouring bit (straddled pulses)
repair.py      bit-error repair from CRC syndromes, guided by the bit margins
demodulator.py Demodulator: blocks in, verified Frames out
"""

from agent.demod.demodulator import DemodOptions, Demodulator

__all__ = ["DemodOptions", "Demodulator"]
