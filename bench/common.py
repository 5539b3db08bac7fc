"""Shared helpers for the benchmarks: data location, CPU time, peak memory, pipeline runs."""

from __future__ import annotations

import io
import os
import resource
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from agent.config import AgentConfig
from agent.frame import Frame
from agent.outputs.stdout import StdoutPublisher
from agent.pipeline import Pipeline

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


def time_pipeline(cfg: AgentConfig, frames: Iterable[Frame]) -> tuple[float, Pipeline]:
    """CPU seconds for a Pipeline built from `cfg` (publishing into a discarded buffer)
    to take every frame and finish, and the pipeline (for its counters)."""
    pipeline = Pipeline(cfg, [StdoutPublisher(io.StringIO())])
    t0 = time.process_time()
    for f in frames:
        pipeline.handle(f)
    pipeline.finish()
    return time.process_time() - t0, pipeline
