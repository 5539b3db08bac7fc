"""Would compiled code make the preamble screen cheaper? The numpy screen against C.

    python bench/screen_compiled.py [--repeat 40] [--cc cc]

The screen (agent/demod/preamble.py, `_screen_strip`) is the demodulator's largest
stage on a busy stream. This bench compiles two C versions of it with the machine's C
compiler (kept out of the agent: it only answers the question) and runs all three over
the same strips of the busy capture (shared/data/iq/modes1_2400.uc8 repeated), checking
that each C version finds exactly numpy's hits, pulses and loudest quiet samples:

- two-pass: window sums and maxima in one loop, the ratio tests in a second, both
  written so that the compiler vectorises them (what a numpy-free rewrite would be);
- early-exit: the same first loop, then a per-sample test that stops at the first
  failed comparison and writes only the hits (how dump1090 screens).

Each is compiled with -O3 for the default target and again with -march=native; the
printout is CPU milliseconds per IQ second (least of 3 passes), screen only.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the agent does (agent/__init__.py)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from agent.demod import preamble  # noqa: E402
from agent.demod.iq import CONVERTERS  # noqa: E402
from agent.demod.timing import Timing  # noqa: E402
from bench.common import shared_data  # noqa: E402

RATE = 2.4e6
# Both kernels: the quiet runs are three runs of three samples (the 2.4 MS/s plan), and
# every float32 operation is numpy's, in numpy's order, so the results are bit-identical.
C_SOURCE = r"""
#include <stddef.h>
#include <stdint.h>
static inline float mx(float a, float b) { return a > b ? a : b; }
static inline float mn(float a, float b) { return a < b ? a : b; }

static void windows(const float *restrict seg, ptrdiff_t nx, float *restrict x3,
                    float *restrict c3, float *restrict m2)
{
    for (ptrdiff_t i = 0; i < nx; i++) {
        float a = seg[i], b = seg[i + 1], c = seg[i + 2];
        float s0 = a + b, s1 = b + c;
        x3[i] = mx(mx(a, b), c);
        c3[i] = s0 + c;
        m2[i] = mx(s0, s1);
    }
}

#define PULSES(j)                                                                  \
    float A = m2[j], B = m2[j + pair], C = m2[j + shift], D = m2[j + shift + pair]; \
    float p = mn(mx(mn(A, B), mn(C, D)), mn(mx(A, B), mx(C, D))) * k;              \
    float quiet = (c3[j + q0] + c3[j + q1]) + c3[j + q2];

void two_pass(const float *seg, ptrdiff_t n, ptrdiff_t nx, ptrdiff_t pair,
              ptrdiff_t shift, ptrdiff_t q0, ptrdiff_t q1, ptrdiff_t q2, float scale,
              float k, float *x3, float *c3, float *m2, uint8_t *restrict hit,
              float *restrict p_out, float *restrict q_out)
{
    windows(seg, nx, x3, c3, m2);
    for (ptrdiff_t j = 0; j < n; j++) {
        PULSES(j)
        float qmax = mx(mx(x3[j + q0], x3[j + q1]), x3[j + q2]) * scale;
        hit[j] = p > mx(quiet, qmax);
        p_out[j] = p;
        q_out[j] = qmax;
    }
}

ptrdiff_t early_exit(const float *seg, ptrdiff_t n, ptrdiff_t nx, ptrdiff_t pair,
                     ptrdiff_t shift, ptrdiff_t q0, ptrdiff_t q1, ptrdiff_t q2, float scale,
                     float k, float *x3, float *c3, float *m2, int64_t *restrict hit,
                     float *restrict p_out, float *restrict q_out)
{
    windows(seg, nx, x3, c3, m2);
    ptrdiff_t nh = 0;
    for (ptrdiff_t j = 0; j < n; j++) {
        PULSES(j)
        if (!(p > quiet))
            continue;
        float qmax = mx(mx(x3[j + q0], x3[j + q1]), x3[j + q2]) * scale;
        if (!(p > qmax))
            continue;
        hit[nh] = j;
        p_out[nh] = p;
        q_out[nh] = qmax;
        nh++;
    }
    return nh;
}
"""

Strip = Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _compile(cc: str, flags: list[str], out: Path) -> ctypes.CDLL:
    src = out.with_suffix(".c")
    src.write_text(C_SOURCE)
    cmd = [cc, "-O3", "-ffp-contract=off", "-shared", "-fPIC", *flags, str(src), "-o", str(out)]
    subprocess.run(cmd, check=True)
    lib = ctypes.CDLL(str(out))
    p, i, f = ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_float
    for fn in (lib.two_pass, lib.early_exit):
        fn.argtypes = [p, i, i, i, i, i, i, i, f, f, p, p, p, p, p, p]
    lib.early_exit.restype = i
    return lib


def _c_strips(lib: ctypes.CDLL, mag: np.ndarray, plan: preamble.ScreenPlan, n: int):
    """The two C kernels as functions of a strip's start (hits, pulses, qmax)."""
    (q0, l0), (q1, l1), (q2, l2) = plan.quiet
    if (l0, l1, l2) != (3, 3, 3):
        raise SystemExit("these kernels are written for the 2.4 MS/s plan")
    k = float(np.float32(plan.nquiet / (2 * preamble.SCREEN_RATIO)))
    size = n + plan.reach
    x3, c3, m2 = (np.empty(size, np.float32) for _ in range(3))
    hit8, hit64 = np.empty(n, np.uint8), np.empty(n, np.int64)
    p_out, q_out = np.empty(n, np.float32), np.empty(n, np.float32)
    scratch = (x3, c3, m2)  # referenced by the closures: alive while they are
    geometry = [plan.pair, plan.shift, q0, q1, q2, float(plan.max_scale), k]

    def args(lo: int, hit: np.ndarray) -> list[int | float]:
        """Both kernels' arguments for the strip at `lo`, hits written to `hit`."""
        seg = mag[lo : lo + size]
        work = [a.ctypes.data for a in (*scratch, hit, p_out, q_out)]
        return [seg.ctypes.data, n, seg.size - 2, *geometry, *work]

    def two_pass(lo: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lib.two_pass(*args(lo, hit8))
        hits = np.flatnonzero(hit8)
        return hits, p_out.take(hits), q_out.take(hits)

    def early_exit(lo: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nh = lib.early_exit(*args(lo, hit64))
        return hit64[:nh].copy(), p_out[:nh].copy(), q_out[:nh].copy()

    return two_pass, early_exit


def _measure(strip: Strip, starts: range, reference: list | None) -> tuple[float, bool]:
    """Least CPU of 3 passes over all strips, and whether every strip matched."""
    best, same = float("inf"), True
    for _ in range(3):
        t0 = time.process_time()
        got = [strip(lo) for lo in starts]
        best = min(best, time.process_time() - t0)
        if reference is not None:
            same &= all(
                all(np.array_equal(a, b) for a, b in zip(g, r, strict=True))
                for g, r in zip(got, reference, strict=True)
            )
    return best, same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=40, help="copies of modes1_2400.uc8")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"), help="C compiler")
    args = ap.parse_args()
    if shutil.which(args.cc) is None:
        raise SystemExit(f"no C compiler {args.cc!r} (apt-get install gcc)")
    raw = shared_data("iq/modes1_2400.uc8").read_bytes() * args.repeat
    mag = np.ascontiguousarray(CONVERTERS["uc8"](raw), dtype=np.float32)
    plan = preamble.ScreenPlan.for_timing(Timing.for_rate(RATE))
    n = preamble.STRIP
    starts = range(0, mag.size - n - plan.reach, n)
    iq_s = len(starts) * n / RATE
    scratch = preamble.Scratch(plan)

    def numpy_strip(lo: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hits, pulses, qmax, _ = preamble._screen_strip(mag, plan, lo, lo + n, scratch)
        return hits, pulses, qmax

    reference = [numpy_strip(lo) for lo in starts]
    print(f"screen of {iq_s:.1f} IQ s (modes1_2400.uc8 x {args.repeat}), strips of {n}")
    cpu, _ = _measure(numpy_strip, starts, None)
    print(f"  {'numpy (the agent)':34s} {cpu / iq_s * 1e3:6.2f} ms per IQ s")
    with tempfile.TemporaryDirectory() as tmp:
        for label, flags in (("-O3", []), ("-O3 -march=native", ["-march=native"])):
            lib = _compile(args.cc, flags, Path(tmp) / f"screen{len(flags)}.so")
            for name, strip in zip(
                ("two-pass", "early-exit"), _c_strips(lib, mag, plan, n), strict=True
            ):
                cpu, same = _measure(strip, starts, reference)
                verdict = "same hits" if same else "DIFFERENT HITS"
                print(f"  C {name:10s} {label:21s} {cpu / iq_s * 1e3:6.2f} ms per IQ s  {verdict}")


if __name__ == "__main__":
    main()
