"""`adsb-agent status` reading a file it cannot trust, as a technician runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "status", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ('{"updated": "yesterday", "expires": 1}', "'updated' is 'yesterday'"),
        ('{"updated": 1e300, "expires": 1}', "not a Unix time"),
        ('{"updated": 1, "expires": 2, "components": [1]}', "'components' is not an object"),
        ('{"updated": 1, "expires": 2, "components": {"mqtt": 3}}', "'mqtt' is not an object"),
        ('{"updated": 1, "expires": 2, "state": ["red"]}', "'state' is not a string"),
        ('{"updated": 1, "expires": 2, "components": {"a": {"state": [1]}}}', "'state' is not"),
    ],
)
def test_a_malformed_status_file_is_one_red_line_and_exit_1(tmp_path, content, why):
    path = tmp_path / "status.json"
    path.write_text(content)
    for args in ((), ("--json",)):
        run = status("--status-file", str(path), *args)
        assert run.returncode == 1 and run.stderr == "", run.stderr
        assert run.stdout.startswith(f"[FAIL ] status file {path}: ")
        assert why in run.stdout and len(run.stdout.splitlines()) == 1


def test_a_missing_file_says_how_to_read_a_hand_run_agents_status(tmp_path):
    run = status("--status-file", str(tmp_path / "none.json"))
    assert run.returncode == 3 and "not running" in run.stdout
    assert "adsb-agent status --status-file FILE" in " ".join(run.stdout.split())


def test_a_good_file_still_reads(tmp_path):
    path = tmp_path / "status.json"
    now = time.time()
    doc = {"site": "s", "pid": 1, "updated": now, "expires": now + 15, "state": "green"}
    path.write_text(json.dumps({**doc, "summary": "ok", "components": {}}))
    run = status("--status-file", str(path))
    assert run.returncode == 0 and "[ ok  ] ok" in run.stdout
