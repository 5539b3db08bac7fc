"""Which frames may reach the decoder: the CRC gate shared by every source.

Frames with their own CRC (DF11/17/18) are accepted when the syndrome is clean.
Address/parity formats (DF0/4/5/16/20/21) carry no checkable CRC: the syndrome *is*
the address, and any bit error yields some other plausible address. They are accepted
only when that address was seen recently in a clean DF11/17 (readsb's policy), which
turns random noise into a reject instead of a phantom aircraft.

The same reasoning holds for DF17/18 the demodulator repaired in more than one bit: the
more bits a repair may flip, the likelier noise matches some pattern (agent/demod/
repair.py), so such a frame only counts for an address already confirmed by a frame
repaired in at most one bit, and never confirms one itself.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from agent.crc import syndrome as _syndrome
from agent.frame import Frame, frame_bits

if TYPE_CHECKING:
    import numpy as np

# A clean DF11/17 keeps its address trusted this long; readsb uses 60-120 s.
RECENT_ADDRESS_TTL_S = 60.0

# A confirmed address is kept this much longer than it is trusted, so that a frame from
# a source running a little behind (out of time order) still finds it.
ADDRESS_KEEP_SLACK_S = 60.0
# The most addresses remembered: far above any receiver's traffic (a few thousand), a
# bound against a feed of endless distinct addresses (the least recently confirmed go).
MAX_RECENT_ADDRESSES = 1 << 17

# Frames repaired in more bits than this need an address confirmed by another frame.
MAX_CONFIRMING_REPAIR = 1

ADDRESS_PARITY_DFS = frozenset((0, 4, 5, 16, 20, 21))
# Formats whose parity is a CRC over every bit: judged by their syndrome alone.
SELF_CHECKING_DFS = frozenset((11, 17, 18))
# Every format the gate can accept; the rest are refused whatever their parity.
ACCEPTED_DFS = SELF_CHECKING_DFS | ADDRESS_PARITY_DFS
# DF11 parity is CRC XOR interrogator code; codes fit in 7 bits (II 0-15, SI 1-63), so a
# DF11 syndrome this small is an IID (accepted for known addresses), not a bit error.
DF11_MAX_IID = 0x7F
_ACCEPTED_KEYS = tuple(f"accepted_df{df}" for df in range(32))


def add_accepted(counts: Counter[str], per_df: Sequence[int]) -> None:
    """counts["accepted_df<N>"] += per_df[N], for every DF N with some."""
    for df, count in enumerate(per_df):
        if count:
            counts[_ACCEPTED_KEYS[df]] += count


# known_addresses copies the remembered addresses out when there are at most this many
# times as many as addresses asked about (the copy and its sort cost about as much as
# this many dictionary lookups per address asked).
KNOWN_COPY_RATIO = 4


class Reject(Enum):
    """Why a frame did not reach the decoder (counted, rtl_433-style)."""

    BAD_LENGTH = "bad_length"
    UNSUPPORTED_DF = "unsupported_df"
    BAD_CRC = "bad_crc"
    UNKNOWN_ADDRESS = "unknown_address"
    UNCONFIRMED_REPAIR = "unconfirmed_repair"


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    icao: int | None = None
    reason: Reject | None = None


class FrameVerifier:
    """Applies the CRC gate and remembers recently confirmed addresses.

    One verifier per pipeline: the pipeline judges frames with `check`, and the
    demodulators of its IQ sources (each in its reader thread) judge theirs through a
    SourceGate over the same verifier, so every source learns the addresses any source
    confirmed. Thread-safe: every public method holds a lock for the few dictionary
    operations it does (uncontended, a fraction of a microsecond per call).
    """

    def __init__(
        self,
        address_ttl_s: float = RECENT_ADDRESS_TTL_S,
        max_addresses: int = MAX_RECENT_ADDRESSES,
    ):
        if address_ttl_s <= 0:
            raise ValueError("address_ttl_s must be > 0")
        if max_addresses < 1:
            raise ValueError("max_addresses must be >= 1")
        self.address_ttl_s = address_ttl_s
        self.max_addresses = max_addresses
        # Address -> time of its latest confirmation, in order of confirmation (oldest
        # first): expiry and the size bound take from the front, O(1) per address.
        self._recent: OrderedDict[int, float] = OrderedDict()
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def seen_recently(self, icao: int, now: float) -> bool:
        with self._lock:
            return self._seen_recently(icao, now)

    def _seen_recently(self, icao: int, now: float) -> bool:
        seen = self._recent.get(icao)
        return seen is not None and now - seen <= self.address_ttl_s

    def recent_addresses(self, now: float) -> list[int]:
        """Every address seen_recently(address, now) accepts (a walk over all of them:
        for tests and tools; per batch, known_addresses asks only about its own)."""
        with self._lock:
            return [a for a, seen in self._recent.items() if now - seen <= self.address_ttl_s]

    def known_addresses(self, addresses: np.ndarray | Iterable[int], now: float) -> np.ndarray:
        """seen_recently(address, now) of each address, as a bool array.

        A demodulator's batch asks about thousands of addresses (most of them noise's
        syndromes) where a site remembers a few hundred: then the remembered ones are
        copied out and each asked one found by binary search (about 10 ns each, not
        the 130 ns of a dictionary lookup from Python). Where more are remembered than
        that pays for (a flood of confirmed addresses), one lookup per address asked,
        however many are remembered.
        """
        import numpy as np  # only IQ sources ask, and they have numpy loaded already

        asked = np.asarray(addresses, dtype=np.int64)
        with self._lock:
            recent, ttl = self._recent, self.address_ttl_s
            remembered = len(recent)
            if remembered > KNOWN_COPY_RATIO * asked.size:
                lookups = [recent.get(a) for a in asked.tolist()]
                return np.array([t is not None and now - t <= ttl for t in lookups], dtype=bool)
            keys = np.fromiter(recent.keys(), dtype=np.int64, count=remembered)
            times = np.fromiter(recent.values(), dtype=np.float64, count=remembered)
        if remembered == 0:
            return np.zeros(asked.size, dtype=bool)
        order = np.argsort(keys)
        at, found = _lookup(asked, keys[order])
        return found & (now - times[order[at]] <= ttl)

    def confirm(self, icao: int, now: float) -> None:
        """Mark an address as seen in a clean, self-checking frame."""
        with self._lock:
            self._confirm(icao, now)

    def _confirm(self, icao: int, now: float) -> None:
        recent = self._recent
        recent[icao] = now
        recent.move_to_end(icao)
        # Forget from the front what no frame near `now` can ask about any more; the
        # front is the earliest confirmation, so this stops at the first one kept.
        keep_after = now - self.address_ttl_s - ADDRESS_KEEP_SLACK_S
        while True:
            oldest, seen = next(iter(recent.items()))
            if seen >= keep_after:
                break
            del recent[oldest]
        if len(recent) > self.max_addresses:
            recent.popitem(last=False)
            self.counts["recent_addresses_evicted"] += 1

    def check(self, frame: Frame, syndrome: int | None = None) -> Verdict:
        """Judge one frame; `syndrome` saves recomputing it when the caller has it."""
        with self._lock:
            verdict = self._judge(frame, syndrome)
            if verdict.accepted:
                self.counts[_ACCEPTED_KEYS[frame.df]] += 1
            else:
                self.counts[verdict.reason.value] += 1  # type: ignore[union-attr]
        return verdict

    def accept_clean(self, frame: Frame) -> None:
        """Count a DF11/17/18 frame whose syndrome the caller found to be 0.

        The demodulator computes every syndrome in numpy; judging each of its frames
        again here was a tenth of its CPU. The same counts and confirmations as check()
        for a frame repaired in at most one bit; one repaired in more is counted but
        confirms nothing (the pipeline's own check() then judges it).
        """
        df = frame.df
        self.confirm_clean(
            df, int.from_bytes(frame.msg[1:4], "big"), frame.repaired_bits, frame.rx_time
        )
        with self._lock:
            self.counts[_ACCEPTED_KEYS[df]] += 1

    def confirm_clean(self, df: int, address: int, repaired_bits: int, rx_time: float) -> None:
        """accept_clean without the count, from fields the caller already has.

        For callers accepting many frames at once (the demodulator: about 2000 a second
        on a busy channel), which count them with count_accepted once per batch.
        """
        # DF18 (non-transponder) addresses do not confirm DF0/4/5/20/21.
        if df != 18 and repaired_bits <= MAX_CONFIRMING_REPAIR:
            self.confirm(address, rx_time)

    def confirm_clean_many(self, frames: Sequence[tuple[int, int, int, float]]) -> None:
        """confirm_clean of each (df, address, repaired_bits, rx_time), in order, under
        one lock: the demodulator gathers its accepted frames' confirmations until it
        next asks seen_recently (or ends its batch), one call instead of three each."""
        with self._lock:
            confirm = self._confirm
            for df, address, repaired_bits, rx_time in frames:
                if df != 18 and repaired_bits <= MAX_CONFIRMING_REPAIR:
                    confirm(address, rx_time)

    def count_accepted(self, per_df: Sequence[int]) -> None:
        """Count per_df[df] frames of each DF as accepted (see confirm_clean)."""
        with self._lock:
            add_accepted(self.counts, per_df)

    def verdicts(
        self, n: int, addresses: Iterable[int], times: Iterable[float], repaired: Iterable[int]
    ) -> list[bool | None]:
        """Frame.accepted of the n frames a demodulator just accepted through this
        verifier directly (its private one): None, still to be judged by the pipeline's.
        See SourceGate.verdicts."""
        return [None] * n

    def count_rejected(self, reason: Reject, n: int) -> None:
        """Count `n` frames refused for `reason` by a caller that judged them itself."""
        with self._lock:
            self.counts[reason.value] += n

    def _judge(self, frame: Frame, known: int | None) -> Verdict:
        msg, df = frame.msg, frame.df
        if len(msg) * 8 != frame_bits(df):
            return Verdict(False, reason=Reject.BAD_LENGTH)
        syn = _syndrome(msg) if known is None else known
        if df in (11, 17, 18):
            aa = int.from_bytes(msg[1:4], "big")
            if df == 11:
                if syn == 0:
                    self._confirm(aa, frame.rx_time)
                    return Verdict(True, aa)
                if syn <= DF11_MAX_IID and self._seen_recently(aa, frame.rx_time):
                    return Verdict(True, aa)
                return Verdict(False, reason=Reject.BAD_CRC)
            if syn != 0:
                return Verdict(False, reason=Reject.BAD_CRC)
            if frame.repaired_bits > MAX_CONFIRMING_REPAIR:
                if not self._seen_recently(aa, frame.rx_time):
                    return Verdict(False, reason=Reject.UNCONFIRMED_REPAIR)
            elif df == 17:
                self._confirm(aa, frame.rx_time)
            return Verdict(True, aa)
        if df in ADDRESS_PARITY_DFS:
            icao = syn
            if self._seen_recently(icao, frame.rx_time):
                return Verdict(True, icao)
            return Verdict(False, reason=Reject.UNKNOWN_ADDRESS)
        return Verdict(False, reason=Reject.UNSUPPORTED_DF)


class SourceGate:
    """One demodulator's way into the pipeline's FrameVerifier, passed as its `verifier`.

    The Demodulator judges its frames itself, in receive order, through the calls
    below (the ones it makes of a verifier), and counts what it accepted once per
    batch. A DF17/18 repaired in more than one bit it accepts without asking whether
    the address is confirmed: with a private verifier the pipeline's check() asked
    that later. Here it is asked when the demodulator accepts the frame (confirm_clean,
    in order, so no later frame's confirmation can count), the refusal is counted as
    check() would count it, and `verdicts` gives the demodulator every verdict for its
    frames (Frame.accepted, set as they are made): the pipeline takes those and judges
    nothing twice.

    Not thread-safe: one per demodulator, used by the thread feeding it; the verifier
    it leads to is shared and thread-safe.
    """

    def __init__(self, verifier: FrameVerifier):
        self.verifier = verifier
        # (address, rx_time) of multi-bit repairs refused since the last verdicts().
        self._refused: set[tuple[int, float]] = set()
        self._refused_per_df = [0] * 32

    def seen_recently(self, icao: int, now: float) -> bool:
        return self.verifier.seen_recently(icao, now)

    def recent_addresses(self, now: float) -> list[int]:
        return self.verifier.recent_addresses(now)

    def known_addresses(self, addresses: np.ndarray | Iterable[int], now: float) -> np.ndarray:
        return self.verifier.known_addresses(addresses, now)

    def confirm_clean(self, df: int, address: int, repaired_bits: int, rx_time: float) -> None:
        """FrameVerifier.confirm_clean, and the confirmed-address test of a multi-bit
        repair that check() makes (Reject.UNCONFIRMED_REPAIR)."""
        if repaired_bits > MAX_CONFIRMING_REPAIR:
            if not self.verifier.seen_recently(address, rx_time):
                self._refused.add((address, rx_time))
                self._refused_per_df[df] += 1
            return
        self.verifier.confirm_clean(df, address, repaired_bits, rx_time)

    def confirm_clean_many(self, frames: Sequence[tuple[int, int, int, float]]) -> None:
        """confirm_clean of each (df, address, repaired_bits, rx_time), in order: the
        address test of a multi-bit repair sees the confirmations before it."""
        plain: list[tuple[int, int, int, float]] = []
        for frame in frames:
            if frame[2] > MAX_CONFIRMING_REPAIR:
                if plain:
                    self.verifier.confirm_clean_many(plain)
                    plain = []
                self.confirm_clean(*frame)
            else:
                plain.append(frame)
        if plain:
            self.verifier.confirm_clean_many(plain)

    def count_accepted(self, per_df: Sequence[int]) -> None:
        """Count the batch's accepted frames, less the repairs refused above."""
        refused = self._refused_per_df
        if any(refused):
            per_df = [n - r for n, r in zip(per_df, refused, strict=True)]
            self.verifier.count_rejected(Reject.UNCONFIRMED_REPAIR, sum(refused))
            self._refused_per_df = [0] * 32
        self.verifier.count_accepted(per_df)

    def verdicts(
        self, n: int, addresses: Iterable[int], times: Iterable[float], repaired: Iterable[int]
    ) -> list[bool]:
        """Frame.accepted of the n frames the demodulator accepted since the last call,
        given in order by their AA field, receive time and repaired bits (read only when
        a refusal is pending): True but for the multi-bit repairs refused above,
        forgotten once given. The verdicts go on the frames as they are made: rebuilding
        every frame to add one (about 1 us each) was 3 % of the whole agent's CPU on a
        busy channel."""
        refused = self._refused
        if not refused:
            return [True] * n
        out = [
            not (bits > MAX_CONFIRMING_REPAIR and (address, t) in refused)
            for address, t, bits in zip(addresses, times, repaired, strict=True)
        ]
        if len(out) != n:
            raise ValueError(f"{len(out)} frames described, {n} made")
        refused.clear()
        return out


# The same rules in batch form, for callers that judge many decodes at once from
# syndromes they computed in numpy (the demodulator: a check() per frame was a tenth of
# its CPU). What a decode still needs to be accepted is its class, higher is surer; the
# demodulator also ranks overlapping decodes by it.
CLEAN_ES = 5  # DF17/18 with syndrome 0
CLEAN_DF11 = 4  # DF11 with syndrome 0
REPAIRED = 3  # DF11/17/18 repaired in 1 to MAX_CONFIRMING_REPAIR bits
REPAIRED2 = 2  # DF17/18 repaired in more: accepted, confirms nothing (check() judges it)
ADDRESSED = 1  # address/parity formats and DF11 with an IID: only for a known address
INVALID = 0
# Classes whose syndrome is 0 (as decoded or after repair) in a DF11/17/18 frame.
SELF_CHECKED = REPAIRED2


def _df_table(dfs: frozenset[int]) -> np.ndarray:
    import numpy as np

    table = np.zeros(32, dtype=bool)
    table[sorted(dfs)] = True
    return table


# The DF sets above as tables indexed by DF (0-31): table.take(df) judges a whole array.
# ACCEPTED_DF_TABLE, ADDRESS_PARITY_TABLE and SELF_CHECKING_TABLE are built on first use
# (__getattr__ below), as everything in numpy here: the per-frame gate above needs none,
# and `adsb-agent check` and the config import this module without numpy.
_DF_TABLES = {
    "ACCEPTED_DF_TABLE": ACCEPTED_DFS,
    "ADDRESS_PARITY_TABLE": ADDRESS_PARITY_DFS,
    "SELF_CHECKING_TABLE": SELF_CHECKING_DFS,
}


def _table(name: str) -> np.ndarray:
    table = globals().get(name)
    if table is None:
        table = globals()[name] = _df_table(_DF_TABLES[name])
    return table


def __getattr__(name: str) -> Any:
    if name in _DF_TABLES:
        return _table(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def classify(df: np.ndarray, syn: np.ndarray) -> np.ndarray:
    """Class (int8) of each decode from its DF and CRC syndrome, before any repair."""
    import numpy as np

    kind = np.full(df.shape, INVALID, dtype=np.int8)
    kind[_table("ADDRESS_PARITY_TABLE")[df]] = ADDRESSED
    kind[(df == 11) & (syn <= DF11_MAX_IID)] = ADDRESSED
    clean = syn == 0
    kind[clean & ((df == 17) | (df == 18))] = CLEAN_ES
    kind[clean & (df == 11)] = CLEAN_DF11
    return kind


def repaired_class(bits: np.ndarray) -> np.ndarray:
    """Class of DF11/17/18 decodes whose syndrome `bits` (>= 1) repaired bits made 0."""
    import numpy as np

    return np.where(bits <= MAX_CONFIRMING_REPAIR, REPAIRED, REPAIRED2).astype(np.int8)


def address_field(msgs: np.ndarray) -> np.ndarray:
    """The 24-bit AA field (bytes 1-3) of each row of msgs (uint8 bytes), as int64."""
    import numpy as np

    return (
        (msgs[:, 1].astype(np.int64) << 16)
        | (msgs[:, 2].astype(np.int64) << 8)
        | msgs[:, 3].astype(np.int64)
    )


def looked_up_address(df: np.ndarray, aa: np.ndarray, syn: np.ndarray) -> np.ndarray:
    """The address an ADDRESSED decode needs known: DF11's AA field (its syndrome is the
    IID), else the syndrome itself (address/parity). int64."""
    import numpy as np

    return np.where(df == 11, aa, syn.astype(np.int64))


def _member(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """values in the sorted array keys (np.isin without sorting the keys every call)."""
    return _lookup(values, keys)[1]


def _lookup(values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each value, an index into the sorted, non-empty array keys, and whether the
    key there is the value."""
    import numpy as np

    at = np.minimum(np.searchsorted(keys, values), keys.size - 1)
    return at, keys[at] == values


def refuse_unknown_addresses(
    verifier: FrameVerifier,
    kind: np.ndarray,
    df: np.ndarray,
    syn: np.ndarray,
    msgs: np.ndarray,
    now: float,
) -> None:
    """Mark ADDRESSED decodes INVALID (in `kind`) unless their address could be known
    when they are judged one by one (seen_recently at their own time).

    "Could be": trusted by `verifier` at `now` (the batch's earliest time, the most
    permissive), or confirmed by another decode of the same batch: a clean DF11/17/18
    or a DF17 repaired in one bit (`msgs`: the decodes' bytes, repairs applied). A
    filter for decodes certain to be refused, so that a caller choosing among
    alternatives never prefers one of those to one that may pass.
    """
    import numpy as np

    addressed = np.flatnonzero(kind == ADDRESSED)
    if addressed.size == 0:
        return
    confirming = np.flatnonzero(
        (kind == CLEAN_ES) | (kind == CLEAN_DF11) | ((kind == REPAIRED) & (df == 17))
    )
    confirmed = np.sort(address_field(msgs[confirming]))
    looked_up = looked_up_address(df[addressed], address_field(msgs[addressed]), syn[addressed])
    known = verifier.known_addresses(looked_up, now)
    if confirmed.size:
        known |= _member(looked_up, confirmed)
    kind[addressed[~known]] = INVALID
