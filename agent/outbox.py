"""The disk outbox: every record is committed here before it is published.

SQLite in WAL mode under the state directory. A record gets the next per-site
sequence number (`seq`) when it is taken; consumers de-duplicate by `(site, seq)`, so a
seq is never given twice: SQLite's AUTOINCREMENT never reuses a value while the file
lives, and a small reservation file beside it (`<name>.seq`, written once per
SEQ_BLOCK records) carries the high-water mark over a lost or corrupt database. A row is
deleted only when the broker acknowledges it.

Bounded by disk bytes and by age: when full the oldest rows go first, counted. The
budget covers the whole footprint (rows with their overhead, and the WAL, which is
truncated after each checkpoint), not only the payloads. Writes use
`synchronous=NORMAL`: a committed row survives a killed process; after a power cut at
most the last WAL checkpoint interval is at risk, a trade made for SD-card wear.

When the disk refuses writes (full), records are held in memory with their seq, still
delivered from there, and committed in order once the disk takes writes again; a
reserve file of RESERVE_BYTES is given up so that acknowledged rows can still be
deleted (in WAL mode even a DELETE needs room). A database SQLite cannot read is moved
aside (`<name>.corrupt-<time>`) and a fresh one started after the reserved seqs, instead
of a restart loop.

Ages are measured on a steady clock: the wall clock at start plus monotonic time since,
so a clock step (NTP correcting a Pi without RTC) neither expires the whole outbox nor
freezes expiry.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import AgentError

log = logging.getLogger("agent.outbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT    NOT NULL,
    icao    TEXT    NOT NULL,
    created REAL    NOT NULL,
    payload BLOB    NOT NULL
);
"""

# Seqs reserved in the `.seq` file at a time: one small write per this many records.
SEQ_BLOCK = 10_000
# Bytes SQLite spends per row beyond its payload, topic and address (record header,
# rowid, created, b-tree cell and page slack), measured on 300-byte positions.
ROW_OVERHEAD = 60
# The WAL is truncated to this after a checkpoint, and checkpoints come about this
# often; its share is taken from the budget (at most an eighth of it).
WAL_LIMIT_BYTES = 1 << 20
# Space given up when the disk is full so that acknowledged rows can still be deleted.
RESERVE_BYTES = 256 * 1024
# A wall-clock jump of more than this against the monotonic clock is a step, not drift.
CLOCK_STEP_S = 30.0


class OutboxError(AgentError):
    """The outbox database cannot be opened (bad path, permissions)."""


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    topic: str
    icao: str
    created: float
    payload: bytes


def _connect(path: Path, wal_limit: int) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA journal_size_limit={wal_limit}")
    db.execute(f"PRAGMA wal_autocheckpoint={max(16, wal_limit // 4096)}")
    return db


def _row_bytes(topic: str, icao: str, payload: bytes) -> int:
    """What one row costs on disk, approximately (see ROW_OVERHEAD)."""
    return len(payload) + len(topic) + len(icao) + ROW_OVERHEAD


class SteadyClock:
    """Wall-clock seconds that follow the monotonic clock across steps.

    Starts at the wall clock and advances with the monotonic one; when the two drift
    apart by less than CLOCK_STEP_S (NTP slewing) it follows the wall clock, a larger
    jump is logged once and absorbed. Thread-safe enough: readers race only on floats.
    """

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._wall, self._mono = wall, monotonic
        self._offset = 0.0  # steady = wall + offset
        self._last_wall, self._last_mono = wall(), monotonic()
        self.steps = 0

    def __call__(self) -> float:
        wall, mono = self._wall(), self._mono()
        jump = (wall - self._last_wall) - (mono - self._last_mono)
        if abs(jump) > CLOCK_STEP_S:
            self._offset -= jump
            self.steps += 1
            log.warning(
                "the wall clock stepped by %+.0f s; outbox ages follow the monotonic clock",
                jump,
            )
        self._last_wall, self._last_mono = wall, mono
        return wall + self._offset


class Outbox:
    """Durable FIFO of published records. Thread-safe (one lock around the connection).

    Args:
        path: the SQLite file (its directory must exist and be writable).
        max_bytes: disk bytes used at most (rows with overhead and the WAL); the
            oldest rows are dropped beyond it.
        max_age_s: rows older than this are dropped by `expire()` (and MQTT message
            expiry is set from it, so a broker does not deliver stale positions either).
        clock: wall clock (seconds); injected so tests can age rows. Ages follow it
            through a SteadyClock (steps are absorbed).
        monotonic: the monotonic clock the SteadyClock checks the wall clock against.
        spill_max: records held in memory while the disk refuses writes.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 100_000_000,
        max_age_s: float = 7 * 86400.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        spill_max: int = 10_000,
    ):
        if not (0 < max_bytes < float("inf")) or not (0 < max_age_s < float("inf")):
            raise ValueError("max_bytes and max_age_s must be finite and > 0")
        self.path = Path(path)
        self.max_age_s = max_age_s
        self.now = SteadyClock(clock, monotonic)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._wal_limit = min(WAL_LIMIT_BYTES, max_bytes // 8)
        self.max_bytes = max_bytes - self._wal_limit  # what rows may use
        self._seq_file = self.path.with_name(self.path.name + ".seq")
        self._reserve = self.path.with_name(self.path.name + ".reserve")
        try:
            self._open()
        except sqlite3.OperationalError as err:
            raise OutboxError(f"cannot open the outbox {self.path}: {err}") from None
        except sqlite3.DatabaseError as err:  # not a database, malformed image
            self._quarantine(err)
        self._refusing = False
        self.pending_acks: set[int] = set()
        # Rows the disk refused, in seq order, with their seq: delivered from here.
        self._spill: deque[Row] = deque()
        self._spill_max = spill_max
        self._has_reserve = False
        self._acked_on_disk = 0  # rows acknowledged whose DELETE the disk refused so far
        self._make_reserve()

    def _open(self, *, seq_floor: int = 0) -> None:
        self._db = _connect(self.path, self._wal_limit)
        self._db.executescript(_SCHEMA)
        (verdict,) = self._db.execute("PRAGMA quick_check(1)").fetchone()
        if verdict != "ok":
            raise sqlite3.DatabaseError(verdict)
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        self._reserved = self._read_seq_file()
        self._seq_retry_at = 0
        # A database without a sequence is new: after a lost one, go on above its seqs.
        self._next_seq = row[0] + 1 if row else max(1, self._reserved, seq_floor)
        self._bytes, self._rows = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(payload) + LENGTH(topic) + LENGTH(icao)), 0)"
            f" + {ROW_OVERHEAD} * COUNT(*), COUNT(*) FROM records"
        ).fetchone()
        if self._reserved <= self._next_seq:
            self._reserve_seqs()

    def _quarantine(self, err: sqlite3.Error) -> None:
        """Move an unreadable database aside and start a fresh one after its seqs."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            self._db.close()
        except (AttributeError, sqlite3.Error):
            pass
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                os.replace(src, Path(f"{aside}{suffix}"))
        floor = self._read_seq_file()
        log.error(
            "outbox %s is unreadable (%s): moved to %s; a new one starts at seq %d",
            self.path,
            err,
            aside,
            max(floor, 1),
        )
        self.counts["corrupt_replaced"] += 1
        try:
            self._open(seq_floor=floor)
        except sqlite3.Error as again:
            raise OutboxError(f"cannot open the outbox {self.path}: {again}") from None

    def _read_seq_file(self) -> int:
        try:
            return int(self._seq_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _reserve_seqs(self) -> None:
        """Write the next high-water mark (write, fsync, rename): once per SEQ_BLOCK."""
        mark = self._next_seq + SEQ_BLOCK
        tmp = self._seq_file.with_name(self._seq_file.name + ".tmp")
        try:
            with open(tmp, "w", encoding="ascii") as fh:
                fh.write(f"{mark}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._seq_file)
            self._reserved = mark
        except OSError as err:
            self.counts["seq_reserve_failed"] += 1
            self._seq_retry_at = self._next_seq + 100  # a full disk: not on every record
            log.warning("cannot write %s (%s); trying again later", self._seq_file, err.strerror)

    def _make_reserve(self) -> None:
        """Keep RESERVE_BYTES on disk to give up when it fills (see ack). A disk that
        never had room for it (a tiny filesystem) goes without."""
        if self._reserve.exists():
            self._has_reserve = True
            return
        try:
            with open(self._reserve, "wb") as fh:
                fh.write(b"\0" * RESERVE_BYTES)
                fh.flush()
                os.fsync(fh.fileno())
            self._has_reserve = True
        except OSError:
            self._reserve.unlink(missing_ok=True)

    def _release_reserve(self) -> bool:
        if not self._reserve.exists():
            return False
        self._reserve.unlink(missing_ok=True)
        self.counts["reserve_released"] += 1
        log.warning("disk full: released the outbox's reserve %s to keep deleting", self._reserve)
        return True

    @property
    def depth(self) -> int:
        """Records waiting for the broker (acknowledged rows a full disk has not let us
        delete yet are not waiting: they are never sent again)."""
        return self._rows + len(self._spill) - self._acked_on_disk

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def spilled(self) -> int:
        return len(self._spill)

    @property
    def refusing(self) -> bool:
        """True while the disk refuses writes (records are held in memory)."""
        return self._refusing

    def put(self, topic: str, record: dict[str, Any]) -> int:
        """Take one record; returns its seq.

        The record gets `seq` added before it is serialised, so the published payload
        and the stored row are the same bytes. While the disk refuses writes the row is
        held in a bounded memory spill (counted; the oldest go when it is full), still
        delivered from there, and committed, in order, once the disk accepts writes.
        """
        with self._lock:
            seq = self._next_seq
            payload = json.dumps({**record, "seq": seq}, separators=(",", ":")).encode()
            row = Row(seq, topic, record.get("icao", ""), self.now(), payload)
            self._next_seq = seq + 1
            if self._next_seq >= self._reserved and self._next_seq >= self._seq_retry_at:
                self._reserve_seqs()
            if self._spill:
                self._flush_spill()
            if self._spill or not self._insert(row):
                self._hold(row)
            return seq

    def _hold(self, row: Row) -> None:
        if len(self._spill) >= self._spill_max:
            self._spill.popleft()
            self.counts["dropped_spill_full"] += 1
        self._spill.append(row)
        self.counts["spilled"] += 1

    def _flush_spill(self) -> None:
        """Commit held rows in order while the disk takes them (lock held).

        Only once the reserve is back on disk: rows written into the room it left
        would leave acknowledged rows no room to be deleted.
        """
        self._make_reserve()
        if self._has_reserve and not self._reserve.exists():
            return
        while self._spill and self._insert(self._spill[0]):
            self._spill.popleft()

    def _insert(self, row: Row) -> bool:
        """One INSERT (lock held); False if SQLite refused it."""
        try:
            self._db.execute(
                "INSERT INTO records (seq, topic, icao, created, payload) VALUES (?,?,?,?,?)",
                (row.seq, row.topic, row.icao, row.created, row.payload),
            )
        except sqlite3.OperationalError as err:
            self.counts["write_failed"] += 1
            if not self._refusing:
                log.error(
                    "outbox %s refused a write (%s); holding up to %d records in memory",
                    self.path,
                    err,
                    self._spill_max,
                )
                self._refusing = True
            return False
        if self._refusing:
            log.info("outbox %s accepts writes again", self.path)
            self._refusing = False
            self._make_reserve()
        self._bytes += _row_bytes(row.topic, row.icao, row.payload)
        self._rows += 1
        self.counts["committed"] += 1
        if self._bytes > self.max_bytes:
            self._drop_oldest()
        return True

    def _drop_oldest(self) -> None:
        """Delete the oldest rows until under max_bytes (lock held)."""
        excess = self._bytes - self.max_bytes
        cur = self._db.execute(
            "SELECT seq, LENGTH(payload) + LENGTH(topic) + LENGTH(icao) FROM records ORDER BY seq"
        )
        last, freed, n = 0, 0, 0
        for seq, size in cur:
            last, freed, n = seq, freed + size + ROW_OVERHEAD, n + 1
            if freed >= excess:
                break
        cur.close()
        if self._delete("seq <= ?", (last,)):
            self._bytes -= freed
            self._rows -= n
            self.counts["dropped_full"] += n

    def _delete(self, where: str, args: Iterable[Any]) -> bool:
        """DELETE rows (lock held); on a full disk give up the reserve and try once more."""
        args = list(args)
        for _ in range(2):
            try:
                self._db.execute(f"DELETE FROM records WHERE {where}", args)
                return True
            except sqlite3.OperationalError:
                # "disk full" or an I/O error while the WAL grows: room is what helps.
                if not self._release_reserve():
                    return False
        return False

    def maintain(self) -> None:
        """Periodic upkeep from the publisher thread: commit held rows and retry acks
        once the disk takes writes again, even when no new record arrives."""
        with self._lock:
            if self._spill:
                self._flush_spill()
            if self.pending_acks:
                self._settle_acks()

    def expire(self) -> int:
        """Drop rows older than max_age_s (held ones too); returns how many."""
        cutoff = self.now() - self.max_age_s
        with self._lock:
            n_held = 0
            while self._spill and self._spill[0].created < cutoff:
                self._spill.popleft()
                n_held += 1
            size, n = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(payload) + LENGTH(topic) + LENGTH(icao)), 0), "
                "COUNT(*) FROM records WHERE created < ?",
                (cutoff,),
            ).fetchone()
            if n and self._delete("created < ?", (cutoff,)):
                self._bytes -= size + ROW_OVERHEAD * n
                self._rows -= n
            else:
                n = 0
            self.counts["dropped_expired"] += n + n_held
        return n + n_held

    def ack(self, seqs: Iterable[int]) -> None:
        """Delete acknowledged rows (missing ones, already dropped, are ignored).

        Held rows acknowledged from memory never reach the disk. On a full disk even
        a DELETE can fail (the WAL must grow): the reserve is given up, and if that is
        not enough the seqs are kept and retried with the next acknowledgement or
        `maintain()`; `pending_acks` tells the publisher not to send those rows again.
        """
        with self._lock:
            self.pending_acks.update(seqs)
            if self._spill:
                acked = [r for r in self._spill if r.seq in self.pending_acks]
                if acked:
                    self._spill = deque(r for r in self._spill if r.seq not in self.pending_acks)
                    self.pending_acks.difference_update(r.seq for r in acked)
                    self.counts["acked"] += len(acked)
            if self.pending_acks:
                self._settle_acks()

    def _settle_acks(self) -> None:
        batch = sorted(self.pending_acks)
        marks = ",".join("?" * len(batch))
        try:
            size, n = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(payload) + LENGTH(topic) + LENGTH(icao)), 0), "
                f"COUNT(*) FROM records WHERE seq IN ({marks})",
                batch,
            ).fetchone()
        except sqlite3.OperationalError:
            self.counts["ack_failed"] += 1
            return
        if not self._delete(f"seq IN ({marks})", batch):
            self.counts["ack_failed"] += 1
            self._acked_on_disk = n
            return
        self._acked_on_disk = 0
        self.pending_acks.clear()
        self._bytes -= size + ROW_OVERHEAD * n
        self._rows -= n
        self.counts["acked"] += n

    def rows_after(self, seq: int, limit: int, below: int | None = None) -> list[Row]:
        """Up to `limit` rows with seq > `seq` (and < `below`), in seq order."""
        sql = "SELECT seq, topic, icao, created, payload FROM records WHERE seq > ?"
        args: list[Any] = [seq]
        if below is not None:
            sql += " AND seq < ?"
            args.append(below)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = [Row(*r) for r in self._db.execute(sql, args)]
            if len(rows) < limit and self._spill:
                rows += [
                    r for r in self._spill if r.seq > seq and (below is None or r.seq < below)
                ][: limit - len(rows)]
            return rows

    def rows(self, seqs: list[int]) -> list[Row]:
        """The rows with these seqs that still exist, in seq order."""
        if not seqs:
            return []
        marks = ",".join("?" * len(seqs))
        with self._lock:
            found = [
                Row(*r)
                for r in self._db.execute(
                    f"SELECT seq, topic, icao, created, payload FROM records "
                    f"WHERE seq IN ({marks}) ORDER BY seq",
                    seqs,
                )
            ]
            if self._spill:
                wanted = set(seqs)
                found += [r for r in self._spill if r.seq in wanted]
            return found

    def last_seq_by_icao(self, below: int) -> dict[str, int]:
        """For each aircraft with rows below `below`, its newest such seq."""
        with self._lock:
            out = dict(
                self._db.execute(
                    "SELECT icao, MAX(seq) FROM records WHERE seq < ? GROUP BY icao", (below,)
                ).fetchall()
            )
            for r in self._spill:
                if r.seq < below:
                    out[r.icao] = r.seq
            return out

    def oldest_created(self) -> float | None:
        """When the oldest waiting record was taken: the first row by seq (rows are
        stamped in seq order), one primary-key step instead of a scan of every row for
        MIN(created), so health and the page may ask often of a large backlog."""
        with self._lock:
            row = self._db.execute("SELECT created FROM records ORDER BY seq LIMIT 1").fetchone()
            held = self._spill[0].created if self._spill else None
        return row[0] if row is not None else held

    def problem(self) -> str | None:
        """What is wrong with the outbox in words, for the status file; None if fine."""
        if not self._refusing:
            return None
        lost = self.counts["dropped_spill_full"]
        return (
            f"the disk refuses writes: {len(self._spill)} records held in memory"
            + (f", {lost} lost" if lost else "")
            + f"; free space where {self.path.parent} is"
        )

    def health(self) -> dict[str, Any]:
        """Disk state for the status file and the health topic (cheap: no scan)."""
        return {
            "depth": self.depth,
            "bytes": self._bytes,
            "held_in_memory": len(self._spill),
            "disk_refusing": self._refusing,
            "dropped_full": self.counts["dropped_full"],
            "dropped_expired": self.counts["dropped_expired"],
            "dropped_spill_full": self.counts["dropped_spill_full"],
            "write_failed": self.counts["write_failed"],
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()
