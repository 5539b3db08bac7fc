"""The process-wide malloc settings (agent/demod/heap.py), read back from glibc itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Four threads that each malloc while all are alive, then glibc's own report
# (malloc_stats: one "Arena N:" block per arena, on stderr).
_ARENAS = """
import ctypes, sys, threading
if sys.argv[1] == "tuned":
    from agent.demod.heap import keep_heap_headroom
    keep_heap_headroom()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
together = threading.Barrier(4)
held = []
def work():
    held.append(libc.malloc(4096))
    together.wait()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
sys.stderr.flush()
libc.malloc_stats()
"""


def _arenas(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _ARENAS, mode], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return sum(line.startswith("Arena ") for line in out.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_every_thread_allocates_from_one_arena():
    assert _arenas("default") > 1  # glibc's default: threads get arenas of their own
    assert _arenas("tuned") == 1
