"""The status file: written atomically by the running agent, read by `adsb-agent status`.

The agent's service monitor (agent/service.py) rewrites the file every few seconds
with green/amber/red per component and an expiry time. A file past its expiry means
the agent stopped updating it (stopped, crashed or wedged), so it is shown as red
whatever it says, the way piaware-status treats an old status file.

The reader trusts nothing in the file: one that is not JSON, or JSON of the wrong shape
(a half-edited copy, another program's file given with --status-file), is one red line
naming what is wrong, never a traceback.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

DEFAULT_STATUS_FILE = Path("/run/adsb-agent/status.json")
_MARK = {"green": "[ ok  ]", "amber": "[warn ]", "red": "[FAIL ]"}


class Unreadable(Exception):
    """The status file is there but cannot be read or is not a status (the reason)."""


def load(path: Path) -> dict[str, Any] | None:
    """The parsed status file, or None when there is none; Unreadable when it is there
    but unreadable, not JSON, or not shaped like a status."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except PermissionError:
        raise Unreadable("permission denied (run with sudo)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise Unreadable(f"cannot read: {err}") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise Unreadable(f"not JSON ({err})") from None
    problem = shape_problem(data)
    if problem is not None:
        raise Unreadable(f"not an adsb-agent status: {problem}")
    return data


def _is_time(v: Any) -> bool:
    # Within what time.localtime takes: a year in four digits.
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 253402300800


def shape_problem(data: Any) -> str | None:
    """What makes `data` not a status the agent writes, or None when it is one."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    for key in ("updated", "expires"):
        if not _is_time(data.get(key)) or not math.isfinite(data[key]):
            return f"{key!r} is {data.get(key)!r}, not a Unix time"
    if not isinstance(data.get("state", ""), str):
        return "'state' is not a string"
    components = data.get("components", {})
    if not isinstance(components, dict):
        return "'components' is not an object"
    for name, comp in components.items():
        if not isinstance(comp, dict):
            return f"component {name!r} is not an object"
        if not isinstance(comp.get("state", ""), str):
            return f"component {name!r}: 'state' is not a string"
    return None


def render(status: dict[str, Any] | None, path: Path, now: float | None = None) -> tuple[str, int]:
    """Text for a technician and the exit status: 0 green or amber, 1 red or stale,
    3 no status file (the agent is not running, or runs without a status file)."""
    if status is None:
        return (
            f"{_MARK['red']} no status at {path}: the agent is not running "
            "(`systemctl status adsb-agent`, `journalctl -u adsb-agent -e`); an agent "
            "started by hand writes one only with `run --status-file FILE`: read it with "
            "`adsb-agent status --status-file FILE`\n",
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
    try:
        status = load(p)
    except Unreadable as err:
        stream.write(f"{_MARK['red']} status file {p}: {err}\n")
        stream.flush()
        return 1
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
