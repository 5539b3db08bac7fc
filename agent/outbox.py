"""The disk outbox: every record is committed here before it is published.

SQLite in WAL mode under the state directory. A record gets the next per-site
sequence number (`seq`) when it is committed; the number survives restarts (SQLite's
AUTOINCREMENT never reuses a value, even after every row is deleted) so consumers
de-duplicate by `(site, seq)`. A row is deleted only when the broker acknowledges it.

Bounded by bytes and by age: when full the oldest rows go first, counted. Writes use
`synchronous=NORMAL`: a committed row survives a killed process; after a power cut at
most the last WAL checkpoint interval is at risk, a trade made for SD-card wear.
"""

from __future__ import annotations

import json
import logging
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


class OutboxError(AgentError):
    """The outbox database cannot be opened (bad path, permissions, corrupt file)."""


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    topic: str
    icao: str
    created: float
    payload: bytes


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class Outbox:
    """Durable FIFO of published records. Thread-safe (one lock around the connection).

    Args:
        path: the SQLite file (its directory must exist and be writable).
        max_bytes: payload bytes kept at most; the oldest rows are dropped beyond it.
        max_age_s: rows older than this are dropped by `expire()` (and MQTT message
            expiry is set from it, so a broker does not deliver stale positions either).
        clock: wall clock (seconds); injected so tests can age rows.
        spill_max: records held in memory while the disk refuses writes.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 100_000_000,
        max_age_s: float = 7 * 86400.0,
        clock: Callable[[], float] = time.time,
        spill_max: int = 10_000,
    ):
        if max_bytes <= 0 or max_age_s <= 0:
            raise ValueError("max_bytes and max_age_s must be > 0")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        try:
            self._db = _connect(self.path)
            self._db.executescript(_SCHEMA)
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'records'"
            ).fetchone()
            self._next_seq = (row[0] if row else 0) + 1
            self._bytes, self._rows = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(payload)), 0), COUNT(*) FROM records"
            ).fetchone()
        except sqlite3.Error as err:
            raise OutboxError(f"cannot open the outbox {self.path}: {err}") from None
        self._refusing = False
        self.pending_acks: set[int] = set()
        self._spill: deque[tuple[str, dict[str, Any]]] = deque(maxlen=spill_max)

    @property
    def depth(self) -> int:
        return self._rows

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def put(self, topic: str, record: dict[str, Any]) -> int | None:
        """Commit one record; returns its seq, or None while the disk refuses writes.

        The record gets `seq` added before it is serialised, so the published payload
        and the stored row are the same bytes. Records the disk refuses wait in a
        bounded memory spill (counted) and are committed, in order, once it accepts
        writes again.
        """
        with self._lock:
            if self._spill:
                while self._spill and self._insert(*self._spill[0]) is not None:
                    self._spill.popleft()
                if self._spill:
                    self._spill_one(topic, record)
                    return None
            seq = self._insert(topic, record)
            if seq is None:
                self._spill_one(topic, record)
            return seq

    def _spill_one(self, topic: str, record: dict[str, Any]) -> None:
        if len(self._spill) == self._spill.maxlen:
            self.counts["dropped_spill_full"] += 1
        self._spill.append((topic, record))
        self.counts["spilled"] += 1

    @property
    def spilled(self) -> int:
        return len(self._spill)

    def _insert(self, topic: str, record: dict[str, Any]) -> int | None:
        """One INSERT with the next seq (lock held); None if SQLite refused it."""
        seq = self._next_seq
        payload = json.dumps({**record, "seq": seq}, separators=(",", ":")).encode()
        try:
            self._db.execute(
                "INSERT INTO records (seq, topic, icao, created, payload) VALUES (?,?,?,?,?)",
                (seq, topic, record.get("icao", ""), self.clock(), payload),
            )
        except sqlite3.OperationalError as err:
            self.counts["write_failed"] += 1
            if not self._refusing:
                log.error(
                    "outbox %s refused a write (%s); holding up to %d records in memory",
                    self.path,
                    err,
                    self._spill.maxlen,
                )
                self._refusing = True
            return None
        if self._refusing:
            log.info("outbox %s accepts writes again", self.path)
            self._refusing = False
        self._next_seq = seq + 1
        self._bytes += len(payload)
        self._rows += 1
        self.counts["committed"] += 1
        if self._bytes > self.max_bytes:
            self._drop_oldest()
        return seq

    def _drop_oldest(self) -> None:
        """Delete the oldest rows until under max_bytes (lock held)."""
        excess = self._bytes - self.max_bytes
        cur = self._db.execute("SELECT seq, LENGTH(payload) FROM records ORDER BY seq")
        last, freed, n = 0, 0, 0
        for seq, size in cur:
            last, freed, n = seq, freed + size, n + 1
            if freed >= excess:
                break
        cur.close()
        self._db.execute("DELETE FROM records WHERE seq <= ?", (last,))
        self._bytes -= freed
        self._rows -= n
        self.counts["dropped_full"] += n

    def expire(self) -> int:
        """Drop rows older than max_age_s; returns how many."""
        cutoff = self.clock() - self.max_age_s
        with self._lock:
            size, n = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(payload)), 0), COUNT(*) FROM records WHERE created < ?",
                (cutoff,),
            ).fetchone()
            if n:
                self._db.execute("DELETE FROM records WHERE created < ?", (cutoff,))
                self._bytes -= size
                self._rows -= n
                self.counts["dropped_expired"] += n
        return n

    def ack(self, seqs: Iterable[int]) -> None:
        """Delete acknowledged rows (missing ones, already dropped, are ignored).

        On a full disk even a DELETE can fail (the WAL must grow): the seqs are kept
        and retried with the next acknowledgement, and `pending_acks` tells the
        publisher not to send those rows again.
        """
        with self._lock:
            self.pending_acks.update(seqs)
            if not self.pending_acks:
                return
            batch = sorted(self.pending_acks)
            marks = ",".join("?" * len(batch))
            try:
                size, n = self._db.execute(
                    "SELECT COALESCE(SUM(LENGTH(payload)), 0), COUNT(*) FROM records "
                    f"WHERE seq IN ({marks})",
                    batch,
                ).fetchone()
                self._db.execute(f"DELETE FROM records WHERE seq IN ({marks})", batch)
            except sqlite3.OperationalError:
                self.counts["ack_failed"] += 1
                return
            self.pending_acks.clear()
            self._bytes -= size
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
            return [Row(*r) for r in self._db.execute(sql, args)]

    def rows(self, seqs: list[int]) -> list[Row]:
        """The rows with these seqs that still exist, in seq order."""
        if not seqs:
            return []
        marks = ",".join("?" * len(seqs))
        with self._lock:
            return [
                Row(*r)
                for r in self._db.execute(
                    f"SELECT seq, topic, icao, created, payload FROM records "
                    f"WHERE seq IN ({marks}) ORDER BY seq",
                    seqs,
                )
            ]

    def last_seq_by_icao(self, below: int) -> dict[str, int]:
        """For each aircraft with rows below `below`, its newest such seq."""
        with self._lock:
            return dict(
                self._db.execute(
                    "SELECT icao, MAX(seq) FROM records WHERE seq < ? GROUP BY icao", (below,)
                ).fetchall()
            )

    def oldest_created(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(created) FROM records").fetchone()
        return row[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
