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

# Arrays up to this size come from the heap, not from a fresh mmap (glibc's default is
# 128 KiB, raised as large blocks are freed): every block's larger temporaries (the
# stage-2 windows, the margins, 0.1-4 MB each) are then reused pages, not new ones.
MMAP_THRESHOLD = 16 << 20
# Freed heap glibc keeps for the next block instead of returning it to the kernel.
HEAP_HEADROOM = 32 << 20
# One malloc arena for every thread. glibc gives each thread that allocates its own
# arena, each with its own free lists and its own HEAP_HEADROOM: the reader thread's
# freed demodulator blocks were then of no use to the pipeline thread, which grew its
# own heap beside them (measured: 2.5-3 MiB of `run`'s peak RSS, no CPU difference;
# Python objects come from pymalloc under the GIL, so threads rarely wait on this lock).
MALLOC_ARENAS = 1
_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers (glibc malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_done = False


def keep_heap_headroom() -> None:
    """Have glibc serve the demodulator's temporaries from a heap it keeps, in
    MALLOC_ARENAS arenas (once per process).

    Every block the demodulator works on allocates and frees several MB of numpy
    temporaries. Served by mmap, each one is faulted in page by page and unmapped again
    on every block; freed at the top of the heap, glibc returns it to the kernel. Both
    cost CPU per block: measured on a busy 2.4 MS/s stream (524288-sample blocks),
    setting the two thresholds took page faults from 7,500 (M_TOP_PAD alone, which
    keeps the mmap threshold at 128 KiB) and 2,900 (glibc's adaptive default) to 1,850
    per 20 blocks, and about a tenth of the CPU, with the same peak RSS: the pages are
    the same ones, kept. Skipped where there is no glibc.
    """
    global _done
    if _done or not sys.platform.startswith("linux"):
        return
    _done = True
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, HEAP_HEADROOM)
    except (AttributeError, OSError):  # not glibc (musl has no mallopt)
        pass
