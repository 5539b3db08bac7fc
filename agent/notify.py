"""sd_notify: tell systemd the agent is ready, alive, what it is doing, and stopping.

sd_notify is a datagram of `KEY=value` lines on the unix socket named by
$NOTIFY_SOCKET (a leading `@` means the abstract namespace); no library is needed.
Without $NOTIFY_SOCKET every notification is a no-op, so `run` behaves the same by
hand and under systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping

log = logging.getLogger("agent.service")


class Notifier:
    """Sends sd_notify datagrams to $NOTIFY_SOCKET; a no-op when it is not set.

    Never raises: a notification that cannot be sent is logged once, since the agent
    must keep receiving even if the service manager went away.
    Thread-safe (one datagram per call).
    """

    def __init__(self, environ: Mapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        if address is not None and address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address
        self.watchdog_s = _watchdog_seconds(env)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send `KEY=value` lines as one datagram; True when it was delivered."""
        if self.address is None:
            return False
        data = "\n".join(a.replace("\n", " ") for a in assignments).encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.sendto(data, self.address)
                return True
            except OSError as err:
                if not self._warned:
                    log.warning("cannot notify systemd at %s: %s", self.address, err.strerror)
                    self._warned = True
                return False

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self, status: str = "stopping") -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """WatchdogSec as systemd passes it (WATCHDOG_USEC, for WATCHDOG_PID if set)."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None
