"""The outbox on a full disk and against its size bound: figures for issue 14.

1. A real tmpfs filled to the last byte under the outbox (needs root): records put
   while it stays full, what a publisher can still read and send, acknowledgements that
   must delete rows, and the counters.
2. The whole footprint (database, WAL, shared memory) of a 1 MB outbox fed 4 MB.

    sudo python bench/disk_full.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from agent.outbox import Outbox


def _record(i: int) -> dict:
    return {"type": "position", "icao": f"E4{i % 50:04X}", "n": i, "pad": "p" * 250}


def full_disk(tmp: Path) -> None:
    mnt = tmp / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    try:
        ob = Outbox(mnt / "outbox.sqlite", spill_max=10_000)
        for i in range(200):
            ob.put("t", _record(i))
        with open(mnt / "filler", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError:
                pass
        seqs = [ob.put("t", _record(i)) for i in range(200, 12_200)]
        readable = ob.rows_after(0, 100_000)
        print("full disk: 12,000 records put while it stays full")
        print(f"  seqs given: {seqs[0]}..{seqs[-1]} (none refused), disk refusing: {ob.refusing}")
        print(f"  readable for delivery: {len(readable)} (held in memory: {ob.spilled})")
        ob.ack([r.seq for r in readable])
        ob.maintain()
        print(f"  after every readable record was acknowledged: depth {ob.depth}")
        print(f"  counters: {dict(sorted(ob.counts.items()))}")
        print(f"  status line: {ob.problem()}")
        ob.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def footprint(tmp: Path) -> None:
    path = tmp / "bound" / "outbox.sqlite"
    path.parent.mkdir()
    ob = Outbox(path, max_bytes=1_000_000)
    worst = 0
    for i in range(12_000):
        ob.put("adsb/v1/s/position/E48A00", _record(i))
        if i % 250 == 0:
            worst = max(worst, _disk_bytes(path))
    worst = max(worst, _disk_bytes(path))
    print("1 MB outbox fed about 4 MB of positions:")
    print(f"  largest footprint seen (db + wal + shm): {worst / 1e6:.2f} MB")
    print(f"  rows kept {ob.depth}, dropped oldest {ob.counts['dropped_full']}")
    ob.close()


def _disk_bytes(path: Path) -> int:
    return sum(
        p.stat().st_size
        for p in path.parent.glob(path.name + "*")
        if p.suffix not in (".seq", ".reserve")
    )


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if os.geteuid() == 0:
            full_disk(tmp)
        else:
            print("full disk: skipped (needs root to mount a tmpfs)")
        footprint(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
