"""The status file: written atomically by the running agent, read by `adsb-agent status`.

The agent's service monitor (agent/service.py) rewrites the file every few seconds
with green/amber/red per component and an expiry time. A file past its expiry means
the agent stopped updating it (stopped, crashed or wedged), so it is shown as red
whatever it says, the way piaware-status treats an old status file.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

DEFAULT_STATUS_FILE = Path("/run/adsb-agent/status.json")
_MARK = {"green": "[ ok  ]", "amber": "[warn ]", "red": "[FAIL ]"}


def load(path: Path) -> dict[str, Any] | None:
    """The parsed status file, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def render(status: dict[str, Any] | None, path: Path, now: float | None = None) -> tuple[str, int]:
    """Text for a technician and the exit status: 0 green or amber, 1 red or stale,
    3 no status file (the agent is not running, or runs without a status file)."""
    if status is None:
        return (
            f"{_MARK['red']} no status at {path}: the agent is not running "
            "(`systemctl status adsb-agent`, `journalctl -u adsb-agent -e`)\n",
            3,
        )
    now = time.time() if now is None else now
    updated = float(status.get("updated", 0))
    expires = float(status.get("expires", 0))
    age = max(now - updated, 0.0)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated))
    state = status.get("state", "red")
    lines = [
        f"adsb-agent at site {status.get('site', '?')}, pid {status.get('pid', '?')}, "
        f"updated {stamp} ({age:.0f} s ago)"
    ]
    if status.get("summary") == "stopped":
        lines.append(f"{_MARK['red']} stopped")
        state = "red"
    elif now > expires:
        lines.append(
            f"{_MARK['red']} STALE: not updated for {age:.0f} s; the agent is stopped or wedged"
        )
        state = "red"
    else:
        lines.append(f"{_MARK.get(state, _MARK['red'])} {status.get('summary', '')}")
    for name, comp in sorted(status.get("components", {}).items()):
        colour = comp.get("state", "red")
        lines.append(f"  {_MARK.get(colour, _MARK['red'])} {name:<28} {comp.get('message', '')}")
    return "\n".join(lines) + "\n", 0 if state in ("green", "amber") else 1


def main(path: str | None, *, as_json: bool = False, out: IO[str] | None = None) -> int:
    """Print the status file at `path` (default /run/adsb-agent/status.json)."""
    p = Path(path) if path else DEFAULT_STATUS_FILE
    stream = out or sys.stdout
    status = load(p)
    text, code = render(status, p)
    if as_json and status is not None:
        text = json.dumps(status, indent=1) + "\n"
    stream.write(text)
    stream.flush()
    return code


def write_atomically(path: Path, text: str) -> None:
    """Write then rename, so a reader sees the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_status_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """$RUNTIME_DIRECTORY/status.json under systemd (RuntimeDirectory=adsb-agent)."""
    env = os.environ if environ is None else environ
    runtime = env.get("RUNTIME_DIRECTORY")
    return Path(runtime.split(":")[0]) / "status.json" if runtime else None
