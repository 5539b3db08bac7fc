"""adsb-agent: ADS-B edge ingestion for low-flying general aviation.

Data flow (one module per stage):
    sources/ -> demod/ -> verify -> decode -> track -> filter -> publish
with config, stats and cli beside it; pipeline.py wires the stages.
"""

__version__ = "0.1.0"
