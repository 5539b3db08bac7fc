"""Logging for the people who tail `journalctl -u adsb-agent -f`.

Under systemd, records go to the journal through systemd-python's JournalHandler
with the right PRIORITY and structured fields (`journalctl ADSB_ICAO=E4A1B2`,
`journalctl ADSB_EVENT=emergency_squawk`): callers pass them with
`log.info(..., extra=fields(icao=..., event=...))`, and ADSB_SITE is added to every
record once the site is known. systemd-python is optional (extra `journal`, or
Debian's python3-systemd with a --system-site-packages venv): without it, lines on a
journal stream carry sd-daemon `<N>` priority prefixes so journald still files them
at the right priority. Off systemd, plain lines with a time stamp go to stderr.

One line per event or state change, never per frame: that is the callers' rule.
This module adds the safety net: a warning or error repeated word for word is let
through once per window and then summarised with a count, so a flapping link cannot
flood a 2 GB SD card.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import IO

SYSLOG_IDENTIFIER = "adsb-agent"
FIELD_ICAO = "ADSB_ICAO"
FIELD_EVENT = "ADSB_EVENT"
FIELD_SITE = "ADSB_SITE"
# Identical warnings/errors are let through once per this many seconds.
REPEAT_WINDOW_S = 60.0
# Distinct repeated messages remembered (oldest forgotten first).
REPEAT_MEMORY = 256

# Python level -> syslog priority (sd-daemon(3) prefixes and PRIORITY=).
_PRIORITY = ((logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.ERROR, 3))
_CRIT = 2
# Marks the handlers this module installed, so a second setup replaces them.
_OURS = "_adsb_agent_handler"


def fields(*, icao: str | None = None, event: str | None = None) -> dict[str, str]:
    """The `extra=` for a log call about one aircraft or event (journal fields)."""
    out = {}
    if icao:
        out[FIELD_ICAO] = icao
    if event:
        out[FIELD_EVENT] = event
    return out


def priority(levelno: int) -> int:
    """Syslog priority for a logging level (same mapping as systemd-python's)."""
    for level, prio in _PRIORITY:
        if levelno <= level:
            return prio
    return _CRIT


def under_systemd(environ: Mapping[str, str] | None = None, stream: IO[str] | None = None) -> bool:
    """True when systemd runs us: stderr is the journal stream JOURNAL_STREAM names
    (its `device:inode`), or INVOCATION_ID says we are a service's process."""
    env = os.environ if environ is None else environ
    return journal_stream(env, stream or sys.stderr) or bool(env.get("INVOCATION_ID"))


def journal_stream(environ: Mapping[str, str], stream: IO[str]) -> bool:
    """True when `stream` is the journal connection systemd described in JOURNAL_STREAM."""
    value = environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    try:
        st = os.fstat(stream.fileno())
        return bool(value) and (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError, AttributeError):
        return False


class RepeatFilter(logging.Filter):
    """Let an identical warning/error through once per `window_s`, then with a count.

    Identical means same logger, level and final text. The first occurrence passes;
    repeats within the window are dropped and counted; the first one after the window
    passes with "(N more in the last 60 s)" appended and field ADSB_REPEATED=N.
    INFO and DEBUG are never touched (state changes are logged once by their callers).
    """

    def __init__(
        self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ):
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self.suppressed = 0
        self._seen: OrderedDict[tuple[str, int, str], list[float | int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        key = (record.name, record.levelno, text)
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None or now - seen[0] >= self.window_s:
            repeats = int(seen[1]) if seen is not None else 0
            self._seen[key] = [now, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > REPEAT_MEMORY:
                self._seen.popitem(last=False)
            if repeats:
                record.msg = f"{text} ({repeats} more in the last {self.window_s:.0f} s)"
                record.args = None
                record.ADSB_REPEATED = repeats
            return True
        seen[1] = int(seen[1]) + 1
        self.suppressed += 1
        return False


class SiteFilter(logging.Filter):
    """Adds ADSB_SITE to every record once the configuration named the site."""

    def __init__(self) -> None:
        super().__init__()
        self.site: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.site is not None and not hasattr(record, FIELD_SITE):
            setattr(record, FIELD_SITE, self.site)
        return True


class PrefixFormatter(logging.Formatter):
    """`<N>logger: message` for a journal stream without systemd-python (sd-daemon(3))."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(
            f"{k.removeprefix('ADSB_').lower()}={getattr(record, k)}"
            for k in (FIELD_EVENT, FIELD_ICAO)
            if hasattr(record, k)
        )
        prefix = f"<{priority(record.levelno)}>"
        body = f"{text} [{extra}]" if extra else text
        return "\n".join(prefix + line for line in body.splitlines() or [""])


_site_filter = SiteFilter()


def set_site(name: str | None) -> None:
    """Tag every later record with ADSB_SITE=name (None: stop tagging)."""
    _site_filter.site = name


def journal_handler() -> logging.Handler | None:
    """systemd-python's JournalHandler, or None when the module is not installed."""
    try:
        from systemd.journal import JournalHandler  # type: ignore[import-not-found]
    except ImportError:
        return None
    return JournalHandler(SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER)


def setup_logging(
    verbose: bool = False,
    *,
    environ: Mapping[str, str] | None = None,
    stream: IO[str] | None = None,
    native: bool = True,
    repeat_window_s: float = REPEAT_WINDOW_S,
) -> logging.Handler:
    """Install the one root handler for this process and return it.

    Args:
        verbose: DEBUG instead of INFO.
        environ, stream: where to look for systemd and where lines go (tests).
        native: use systemd-python's JournalHandler when under systemd and installed;
            False forces the `<N>` prefixed stream (what happens without the module).
        repeat_window_s: window of the RepeatFilter.
    """
    env = os.environ if environ is None else environ
    out = stream or sys.stderr
    handler: logging.Handler | None = None
    missing_module = False
    if under_systemd(env, out):
        handler = journal_handler() if native else None
        if handler is None:
            missing_module = native
            if journal_stream(env, out) or not native:
                handler = logging.StreamHandler(out)
                handler.setFormatter(PrefixFormatter("%(name)s: %(message)s"))
    if handler is None:
        handler = logging.StreamHandler(out)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    handler.addFilter(RepeatFilter(repeat_window_s))
    handler.addFilter(_site_filter)
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if missing_module:
        logging.getLogger("agent").info(
            "systemd-python is not installed: logging without journal fields "
            "(install the 'journal' extra or python3-systemd)"
        )
    return handler
