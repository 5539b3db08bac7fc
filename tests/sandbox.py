"""Run a command in a private mount namespace with its own empty /run.

Some real peers write to /run: systemd-analyze (as root) leaves
/run/systemd/systemd-units-load, and libsystemd's journal client only ever sends to
/run/systemd/journal/socket. Tests must not touch the host's /run, so those run
under `unshare -m` with a tmpfs mounted on /run first; further mounts (a tiny or a
read-only tmpfs to stage a full or read-only disk) go in `prelude`. Mounts made in
the namespace vanish with it. Needs root (CI runs as root); `available()` says so.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence


@functools.cache
def available() -> bool:
    """True when this process may create a mount namespace and mount tmpfs in it."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        return False
    probe = subprocess.run(
        [unshare, "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs tmpfs /run"],
        capture_output=True,
        timeout=20,
    )
    return probe.returncode == 0


def run(
    argv: Sequence[str], *, prelude: str = "", timeout: float = 60, **kwargs
) -> subprocess.CompletedProcess[str]:
    """`argv` with a fresh tmpfs on /run (and `prelude` shell commands run before it)."""
    script = "set -e\nmount -t tmpfs tmpfs /run\n" + prelude + '\nexec "$@"'
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def quote(path: object) -> str:
    return shlex.quote(str(path))
