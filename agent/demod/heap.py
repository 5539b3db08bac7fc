"""Process-wide malloc settings (the demodulator's headroom, one arena), made once where
the process starts.

Called from the command line's main() (agent/cli.py, so every `adsb-agent` command and
`python -m agent`) and from the benchmarks that build a Demodulator themselves, not
from Demodulator.__init__: it changes the allocator for the whole process, which is the
program's decision, not one object's (a library user, or a test building many
demodulators, keeps the allocator it has).
"""

from __future__ import annotations

import ctypes
import sys

# Freed heap glibc keeps for the next block instead of returning it to the kernel.
HEAP_HEADROOM = 16 << 20
# One malloc arena for every thread. glibc gives each thread that allocates its own
# arena, each with its own free lists and its own HEAP_HEADROOM: the reader thread's
# freed demodulator blocks were then of no use to the pipeline thread, which grew its
# own heap beside them (measured: 2.5-3 MiB of `run`'s peak RSS, no CPU difference;
# Python objects come from pymalloc under the GIL, so threads rarely wait on this lock).
MALLOC_ARENAS = 1
_M_TOP_PAD = -2  # mallopt parameter numbers (glibc malloc.h)
_M_ARENA_MAX = -8
_done = False


def keep_heap_headroom() -> None:
    """Ask glibc to keep HEAP_HEADROOM bytes of freed heap, in MALLOC_ARENAS arenas
    (once per process).

    Every block the demodulator works on allocates and frees a few MB of numpy
    temporaries. By default glibc returns the freed top of the heap to the kernel and
    faults it back in on the next block: measured, that was about a third of the
    demodulator's CPU time on a busy 2.4 MS/s stream (1.7 of 5.7 ms per 256k-sample
    block). Costs at most HEAP_HEADROOM of resident memory, and is skipped where there
    is no glibc.
    """
    global _done
    if _done or not sys.platform.startswith("linux"):
        return
    _done = True
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
        libc.mallopt(_M_TOP_PAD, HEAP_HEADROOM)
    except (AttributeError, OSError):  # not glibc (musl has no mallopt)
        pass
