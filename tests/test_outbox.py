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
    ob = Outbox(tmp_path / "o.db", max_age_s=60, clock=lambda: now[0], monotonic=lambda: now[0])
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


def _mount_tiny_fs(path: Path, size: str = "256k") -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=False
    )
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
        held = seqs[-1]  # the record the disk refused still got the next seq
        committed = seqs[:-1]
        assert held == committed[-1] + 1
        ob.ack(committed[:3])  # acknowledgements while full are kept, not lost
        # Space comes back.
        filler.unlink()
        if not mounted:
            ob._db.execute("PRAGMA max_page_count = 100000")
        ob.ack(committed[3:])
        assert ob.counts["acked"] == len(committed)
        nxt = ob.put("t", _rec(99_999))
        assert nxt == held + 1 and ob.spilled == 0
        payloads = [json.loads(r.payload) for r in ob.rows_after(0, 100)]
        # The spilled record was committed first, in order, with the next seq.
        assert [p["n"] for p in payloads] == [i - 1, 99_999]
        assert [p["seq"] for p in payloads] == [committed[-1] + 1, committed[-1] + 2]
        ob.close()
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def _files_bytes(path: Path) -> int:
    """The outbox's whole footprint: the database, its WAL and shared memory."""
    return sum(
        p.stat().st_size
        for p in path.parent.glob(path.name + "*")
        if p.is_file() and not p.name.endswith((".seq", ".reserve"))
    )


def test_disk_use_stays_within_max_bytes_wal_included(tmp_path):
    path = tmp_path / "o.db"
    ob = Outbox(path, max_bytes=1_000_000)
    worst = 0
    for i in range(12_000):  # about 4 MB of positions through a 1 MB outbox
        ob.put("adsb/v1/s/position/E48A00", {**_rec(i), "pad": "p" * 250})
        if i % 500 == 0:
            worst = max(worst, _files_bytes(path))
    worst = max(worst, _files_bytes(path))
    assert ob.counts["dropped_full"] > 0
    # shm is a fixed 32 KiB; the rest is rows and the truncated WAL.
    assert worst <= 1_000_000 + 32 * 1024 + 4096 * 16, worst
    ob.close()


def test_corrupt_outbox_is_moved_aside_and_seq_goes_on(tmp_path, caplog):
    path = tmp_path / "o.db"
    ob = Outbox(path)
    last = [ob.put("t", _rec(i)) for i in range(3)][-1]
    ob.close()
    path.write_bytes(b"this is not a database" * 100)
    for extra in ("-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    ob = Outbox(path)  # no exception: a restart loop would lose the site
    assert ob.counts["corrupt_replaced"] == 1
    assert list(tmp_path.glob("o.db.corrupt-*")), "the unreadable file is kept for inspection"
    assert "unreadable" in caplog.text and "moved to" in caplog.text
    assert ob.put("t", _rec(9)) > last  # consumers de-duplicating by seq see no repeat
    ob.close()


def test_deleted_outbox_does_not_restart_seq_at_one(tmp_path):
    path = tmp_path / "o.db"
    ob = Outbox(path)
    last = [ob.put("t", _rec(i)) for i in range(5)][-1]
    ob.close()
    for extra in ("", "-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    ob = Outbox(path)
    assert ob.put("t", _rec(9)) > last
    ob.close()


def test_clock_step_forward_does_not_expire_the_outbox(tmp_path):
    wall, mono = [1_800_000_000.0], [100.0]
    ob = Outbox(tmp_path / "o.db", max_age_s=3600, clock=lambda: wall[0], monotonic=lambda: mono[0])
    for i in range(5):
        ob.put("t", _rec(i))
    wall[0] += 3 * 86400  # NTP fixes a stale clock: three days forward in one step
    mono[0] += 10
    assert ob.expire() == 0
    assert ob.depth == 5
    mono[0] += 3601  # an hour later by the steady clock they do expire
    wall[0] += 3601
    assert ob.expire() == 5


def test_clock_step_backward_does_not_freeze_expiry(tmp_path):
    wall, mono = [1_800_000_000.0], [100.0]
    ob = Outbox(tmp_path / "o.db", max_age_s=60, clock=lambda: wall[0], monotonic=lambda: mono[0])
    ob.put("t", _rec(1))
    wall[0] -= 5 * 3600  # stepped back five hours
    mono[0] += 61
    wall[0] += 61
    assert ob.expire() == 1


def test_full_disk_that_stays_full_still_delivers_and_deletes(tmp_path):
    """Held records are readable for delivery, and acks delete rows via the reserve."""
    mnt = tmp_path / "tiny"
    if not _mount_tiny_fs(mnt, "2m"):
        pytest.skip("needs root to mount a tmpfs")  # CI runs as root
    try:
        ob = Outbox(mnt / "o.db", spill_max=50)
        before = [ob.put("t", {**_rec(i), "pad": "y" * 2000}) for i in range(10)]
        filler = mnt / "filler"
        with open(filler, "wb", buffering=0) as fh:  # fill every byte left
            try:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
            except OSError:
                pass
        seqs = [ob.put("t", {**_rec(i), "pad": "y" * 2000}) for i in range(80)]
        assert ob.refusing and ob.spilled == 50
        assert ob.counts["committed"] >= len(before)
        assert ob.counts["dropped_spill_full"] == 80 + 10 - 50 - ob.counts["committed"]
        # What the publisher reads includes the held rows, with their seqs.
        readable = [r.seq for r in ob.rows_after(0, 1000)]
        assert readable[-50:] == seqs[-50:]
        assert ob.health()["held_in_memory"] == 50 and ob.health()["disk_refusing"]
        ob.ack(readable)  # the broker acknowledged everything while the disk is full
        assert ob.depth == 0 and not ob.pending_acks
        assert ob.counts["acked"] == len(readable)
        assert ob.counts["reserve_released"] == 1  # the DELETE needed the reserve
        ob.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_the_oldest_waiting_record_is_the_first_by_seq(tmp_path):
    now = [1000.0]
    ob = Outbox(tmp_path / "o.db", clock=lambda: now[0], monotonic=lambda: now[0])
    assert ob.oldest_created() is None
    seqs = []
    for _ in range(3):
        seqs.append(ob.put("t", _rec(len(seqs))))
        now[0] += 10
    ob.ack(seqs[:1])
    assert ob.oldest_created() == 1010.0
