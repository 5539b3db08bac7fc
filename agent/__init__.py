"""adsb-agent: ADS-B edge ingestion for low-flying general aviation.

Data flow (one module per stage):
    sources/ -> demod/ -> verify -> decode -> track -> filter -> publish
with config, stats and cli beside it; pipeline.py wires the stages.
"""

import os

# The demodulator's matrix products are small: BLAS threads would only spin, and on a
# 2-core Pi that is CPU taken from the demodulator itself (measured on bench/sources.py:
# 0.32 instead of 0.06 CPU s per IQ s). Before numpy is first imported; the systemd
# unit sets the same.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

__version__ = "0.1.0"
