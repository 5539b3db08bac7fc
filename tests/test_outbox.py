"""Outbox: durable, bounded, never reuses a sequence number."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from agent.outbox import Outbox, OutboxError


def _rec(i: int, icao: str = "E48A00") -> dict:
    return {"type": "position", "icao": icao, "n": i, "pad": "x" * 100}


def test_seq_survives_restart_and_is_never_reused(tmp_path):
    ob = Outbox(tmp_path / "o.db")
    seqs = [ob.put("t", _rec(i)) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    ob.ack(seqs)  # every row gone
    ob.close()
    ob = Outbox(tmp_path / "o.db")
    assert ob.depth == 0
    assert ob.put("t", _rec(9)) == 6
    payload = json.loads(ob.rows_after(0, 10)[0].payload)
    assert payload["seq"] == 6 and payload["n"] == 9


def test_rows_deleted_only_when_acked(tmp_path):
    ob = Outbox(tmp_path / "o.db")
    for i in range(10):
        ob.put("t", _rec(i))
    ob.ack([2, 4])
    assert [r.seq for r in ob.rows_after(0, 100)] == [1, 3, 5, 6, 7, 8, 9, 10]
    assert ob.depth == 8
    ob.close()
    assert Outbox(tmp_path / "o.db").depth == 8


def test_full_outbox_drops_oldest_and_counts(tmp_path):
    ob = Outbox(tmp_path / "o.db", max_bytes=2000)
    for i in range(50):
        ob.put("t", _rec(i))
    assert ob.bytes <= 2000
    kept = [r.seq for r in ob.rows_after(0, 100)]
    assert kept == list(range(51 - len(kept), 51))  # the newest survive
    assert ob.counts["dropped_full"] == 50 - len(kept)


def test_old_rows_expire(tmp_path):
    now = [1000.0]
    ob = Outbox(tmp_path / "o.db", max_age_s=60, clock=lambda: now[0])
    ob.put("t", _rec(1))
    now[0] += 30
    ob.put("t", _rec(2))
    now[0] += 40
    assert ob.expire() == 1
    assert [r.seq for r in ob.rows_after(0, 10)] == [2]
    assert ob.counts["dropped_expired"] == 1


def test_unwritable_location_is_a_clear_error(tmp_path):
    with pytest.raises(OutboxError, match="cannot open the outbox"):
        Outbox(tmp_path / "missing-dir" / "o.db")


def _mount_tiny_fs(path: Path) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)], check=False)
    return r.returncode == 0


def test_disk_full_keeps_records_in_memory_and_commits_them_later(tmp_path):
    """A real full filesystem (tmpfs of 256 KiB) when root; else a capped database."""
    mnt = tmp_path / "tiny"
    mounted = _mount_tiny_fs(mnt)
    try:
        where = mnt if mounted else tmp_path
        filler = where / "filler"
        filler.write_bytes(b"\0" * (96 * 1024))
        ob = Outbox(where / "o.db", spill_max=100_000)
        if not mounted:
            ob._db.execute("PRAGMA max_page_count = 40")
        seqs = []
        i = 0
        while ob.spilled == 0:
            seqs.append(ob.put("t", {**_rec(i), "pad": "y" * 2000}))
            i += 1
            assert i < 10_000, "the filesystem never filled"
        assert ob.counts["write_failed"] >= 1
        assert seqs[-1] is None
        committed = [s for s in seqs if s is not None]
        ob.ack(committed[:3])  # acknowledgements while full are kept, not lost
        # Space comes back.
        filler.unlink()
        if not mounted:
            ob._db.execute("PRAGMA max_page_count = 100000")
        ob.ack(committed[3:])
        assert ob.counts["acked"] == len(committed)
        nxt = ob.put("t", _rec(99_999))
        assert nxt is not None and ob.spilled == 0
        payloads = [json.loads(r.payload) for r in ob.rows_after(0, 100)]
        # The spilled record was committed first, in order, with the next seq.
        assert [p["n"] for p in payloads] == [i - 1, 99_999]
        assert [p["seq"] for p in payloads] == [committed[-1] + 1, committed[-1] + 2]
        ob.close()
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
