"""Builds tests/fake_librtlsdr/fake_librtlsdr.c with the machine's gcc and drives it.

The library exports the librtlsdr API, so the real pyrtlsdr runs over it; the agent is
pointed at it with ADSB_AGENT_LIBRTLSDR (see agent.sources.rtlsdr.load_pyrtlsdr). A test
holds the same library through ctypes (dlopen returns the already loaded copy, so both
see one set of globals) to unplug and replug the "dongle" and read what was set.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "fake_librtlsdr" / "fake_librtlsdr.c"


def build(outdir: Path, *, omit_dithering: bool = False) -> Path:
    """Compile the fake into `outdir`/librtlsdr.so (or a variant lacking set_dithering).

    The file is named librtlsdr.so so that pyrtlsdr's own LD_LIBRARY_PATH search would
    also find it; it is rebuilt only when the C source changed.
    """
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("gcc is needed to build the fake librtlsdr (apt-get install gcc)")
    sub = outdir / ("no_dithering" if omit_dithering else "full")
    sub.mkdir(parents=True, exist_ok=True)
    lib = sub / "librtlsdr.so"
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    stamp = sub / "source.sha"
    if lib.exists() and stamp.exists() and stamp.read_text() == digest:
        return lib
    cmd = [cc, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(lib), str(SOURCE), "-lpthread"]
    if omit_dithering:
        cmd.insert(1, "-DFAKE_OMIT_DITHERING")
    subprocess.run(cmd, check=True, capture_output=True)
    stamp.write_text(digest)
    return lib


class FakeDongle:
    """ctypes handle on the fake's control functions."""

    def __init__(self, lib_path: Path):
        self.path = lib_path
        self.lib = ctypes.CDLL(str(lib_path))
        self.lib.fake_configure.argtypes = [ctypes.c_char_p, ctypes.c_double, ctypes.c_int]
        self.lib.fake_set_speed.argtypes = [ctypes.c_double]
        self.lib.fake_set_serial.argtypes = [ctypes.c_char_p]
        self.lib.fake_set_plugged.argtypes = [ctypes.c_int]
        self.lib.fake_set_open_error.argtypes = [ctypes.c_int]
        self.lib.fake_log.restype = ctypes.c_char_p
        self.lib.fake_callbacks.restype = ctypes.c_ulong

    def configure(self, iq_path: Path, *, speed: float = 1.0, loop: bool = False) -> None:
        """Serve `iq_path` (UC8) paced at `speed` x real time (0: unpaced)."""
        if self.lib.fake_configure(str(iq_path).encode(), speed, int(loop)) != 0:
            raise OSError(f"fake librtlsdr cannot read {iq_path}")
        self.plug(True)
        self.clear_log()

    def set_speed(self, speed: float) -> None:
        self.lib.fake_set_speed(speed)

    def set_serial(self, serial: str) -> None:
        self.lib.fake_set_serial(serial.encode())

    def fail_open(self, code: int) -> None:
        """Make rtlsdr_open return `code` (libusb: -3 access denied, -6 busy); 0: open."""
        self.lib.fake_set_open_error(code)

    def plug(self, on: bool) -> None:
        self.lib.fake_set_plugged(int(on))

    def log(self) -> list[str]:
        """Every call the fake received, one 'name value' string each, in order."""
        return self.lib.fake_log().decode().splitlines()

    def clear_log(self) -> None:
        self.lib.fake_log_clear()

    def callbacks(self) -> int:
        """Buffers handed to read_async callbacks since configure() (all opens)."""
        return int(self.lib.fake_callbacks())
