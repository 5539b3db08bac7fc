"""Shared helpers for the benchmarks: data location, CPU time and peak memory."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_data(relpath: str) -> Path:
    root = Path(os.environ.get("ADSB_AGENT_SHARED", REPO.parent / "shared"))
    path = root / "data" / relpath
    if not path.exists():
        sys.exit(f"missing recording {path} (set ADSB_AGENT_SHARED)")
    return path


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pin_to_one_core() -> None:
    """Benchmarks that claim 'one core' run on one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
