"""Shared test fixtures: real recordings from ../shared/data and a real mosquitto broker."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    return Path(os.environ.get("ADSB_AGENT_SHARED", REPO.parent / "shared"))


def shared_data(relpath: str) -> Path:
    """Path of a recording under shared/data; fails (not skips) on CI when missing."""
    path = shared_root() / "data" / relpath
    if not path.exists():
        msg = f"shared recording missing: {path}"
        if os.environ.get("ADSB_AGENT_SHARED") or os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port}")


class Broker:
    """A mosquitto process with its own config, port and directory."""

    def __init__(self, workdir: Path, extra_conf: str = "", *, persistent: bool = False):
        self.workdir = workdir
        self.persistent = persistent
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.extra_conf = extra_conf
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "mosquitto.log"

    def start(self) -> Broker:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"user {getpass.getuser()}\n"
            + (
                f"persistence true\npersistence_location {self.workdir}/\n"
                if self.persistent
                else "persistence false\n"
            )
            + "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            + (self.extra_conf or "allow_anonymous true\n")
        )
        self.proc = subprocess.Popen(
            [exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=self.log.open("ab")
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path).start()
    yield b
    b.stop()
