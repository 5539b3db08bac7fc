"""CPU seconds of a few numpy kernels and a Python loop: how an emulator bends ratios.

    python bench/ops.py            (here, and inside an ARM root: scripts/pi-qemu-footprint.sh)

Under qemu-user every instruction is translated, but not at one price: integer vector
instructions (what dump1090-mutability's demodulator runs on uint16 magnitudes) cost a
few times native, float32 min/max about a hundred times (NEON FMAX/FMIN are emulated
through helper calls). The demodulator's screen is float32 min/max, so a ratio to
dump1090-mutability measured under emulation says more about the emulator than about a
Pi. Each kernel: 20 passes over 2M elements; least of 3 runs.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

import numpy as np


def _cpu(fn: Callable[[], object], passes: int = 20, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.process_time()
        for _ in range(passes):
            fn()
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    rng = np.random.default_rng(1)
    a = rng.random(2_000_000).astype(np.float32)
    b = a[::-1].copy()
    out = np.empty_like(a)
    ia = (a * 1000).astype(np.uint16)
    ib = ia[::-1].copy()
    iout = np.empty_like(ia)
    m = np.ones((8, 64), np.float32)
    cols = a[: 64 * 30_000].reshape(64, 30_000)
    kernels: list[tuple[str, Callable[[], object]]] = [
        ("python loop (1/20 of 2M)", lambda: sum(i * i for i in range(100_000))),
        ("f32 add", lambda: np.add(a, b, out=out)),
        ("f32 multiply", lambda: np.multiply(a, b, out=out)),
        ("f32 maximum", lambda: np.maximum(a, b, out=out)),
        ("f32 greater", lambda: np.greater(a, b)),
        ("u16 add", lambda: np.add(ia, ib, out=iout)),
        ("u16 maximum", lambda: np.maximum(ia, ib, out=iout)),
        ("f32 matmul (8x64 @ 64x30k)", lambda: m @ cols),
    ]
    print(f"{platform.machine()} numpy {np.__version__}")
    for name, fn in kernels:
        print(f"  {name:28s} {_cpu(fn):7.3f} CPU s")


if __name__ == "__main__":
    main()
