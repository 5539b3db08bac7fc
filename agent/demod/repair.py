"""Bit-error repair from CRC syndromes, guided by how sure the slicer was of each bit.

Mode S parity is a CRC, so a frame with bit errors e has syndrome S(e), the XOR of the
syndromes of its single-bit errors. A syndrome table alone (readsb's way) repairs one or
two bits anywhere; that is all it can do safely, because with more bits in play too many
patterns share syndromes with noise.

The slicer knows more than the bits: each bit comes with a margin, and the bits a weak
reply gets wrong are nearly always among its least certain ones. So the patterns tried
are restricted to the least certain bits: one or two flipped bits are looked up in
syndrome tables and kept only when they are among the WEAKEST[w] least certain; three
are searched among the WEAKEST[3] least certain (a Chase decoder) and kept when exactly
one pattern there matches. Fewer bits in play means fewer patterns, and the chance that
noise matches one of them is what costs false frames: about (patterns tried) / 2**24
per noise candidate with a self-checking DF, which `false_match_odds` reports and
bench/demod.py measures.

find() never flips the DF (the first five bits): a different DF is a different frame.
The one DF repair allowed is proposed by extended_squitter_df, towards DF17/18, whose
CRC covers the DF as much as any other bit.
"""

from __future__ import annotations

from functools import cache
from itertools import combinations
from math import comb

import numpy as np

from agent import crc

# find() never flips the DF field (extended_squitter_df proposes the one DF repair).
FIRST_BIT = 5
# For each number of flipped bits: they must all be among this many least certain bits.
# 1 and 2 are readsb's repairs restricted to uncertain bits (a true single error sits
# among the 16 weakest bits nearly always); 3 is tried only with repair_bits=3.
WEAKEST = {1: 16, 2: 12, 3: 16}
MAX_BITS = max(WEAKEST)
# The 3-bit search runs only in frames with at most MAX_DOUBTFUL bits whose margin is
# under DOUBTFUL times the frame's mean margin (see _few_doubtful).
DOUBTFUL = 0.25
MAX_DOUBTFUL = 18


@cache
def bit_syndromes(nbits: int) -> np.ndarray:
    """Syndrome of a single-bit error at each bit of an `nbits` frame (DF bits: 0)."""
    out = np.zeros(nbits, dtype=np.uint32)
    for syn, bit in crc.single_bit_syndromes(nbits).items():
        out[bit] = syn
    return out


@cache
def _table(nbits: int, weight: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted syndromes of every `weight`-bit error outside the DF, and their bits.

    Unique for weights 1 and 2: the code's distance is 6 at 112 bits.
    """
    single = bit_syndromes(nbits)
    pat = np.array(list(combinations(range(FIRST_BIT, nbits), weight)), dtype=np.int64)
    syn = np.bitwise_xor.reduce(single[pat], axis=1)
    order = np.argsort(syn, kind="stable")
    return syn[order], pat[order]


@cache
def _patterns(weakest: int, weight: int) -> np.ndarray:
    """Every choice of `weight` positions among `weakest`, as a (count, weight) array."""
    return np.array(list(combinations(range(weakest), weight)), dtype=np.intp).reshape(-1, weight)


@cache
def _pattern_columns(weakest: int, weight: int) -> np.ndarray:
    """_patterns transposed, (weight, count): each position a contiguous index array."""
    return np.ascontiguousarray(_patterns(weakest, weight).T)


def false_match_odds(max_bits: int) -> float:
    """Chance that a noise candidate's random syndrome matches some pattern tried."""
    tried = sum(comb(WEAKEST[w], w) for w in range(1, max_bits + 1))
    return tried / 2.0**24


def find(
    syn: np.ndarray,
    soft: np.ndarray,
    nbits: int,
    max_bits: int,
    search: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The bits to flip in each frame so that its syndrome becomes zero.

    Weights 1 and 2 are looked up in syndrome tables (one pattern each at most) and
    kept when their bits are among the WEAKEST[w] least certain; weight 3 is searched
    among the WEAKEST[3] least certain bits. More than one bit is only repaired in the
    rows `search` allows (the caller keeps that for weak replies: noise does not put
    two errors in a strong one, interference does, and most rows of a busy channel are
    strong).

    Args:
        syn: (m,) nonzero syndromes.
        soft: (m, >= nbits) bit margins (sign = bit, size = certainty).
        nbits: frame length (56 or 112).
        max_bits: most bits flipped in one frame (1 to MAX_BITS).
        search: (m,) bool, rows where more than one bit may be repaired (all when None).
    Returns:
        (bits, count): bits (m, max_bits) int64 indices, -1 where unused; count (m,) the
        number flipped, 0 where no pattern among the weakest bits matches.
    """
    m = syn.size
    bits = np.full((m, max_bits), -1, dtype=np.int64)
    count = np.zeros(m, dtype=np.int8)
    if m == 0:
        return bits, count
    syn = syn.astype(np.uint32)
    allowed = np.ones(m, dtype=bool) if search is None else search
    for w in range(1, min(max_bits, 2) + 1):
        keys, pats = _table(nbits, w)
        rows = np.flatnonzero((count == 0) & (allowed if w > 1 else True))
        at = np.minimum(np.searchsorted(keys, syn[rows]), keys.size - 1)
        hit = keys[at] == syn[rows]
        rows, pat = rows[hit], pats[at[hit]]
        if rows.size == 0:
            continue
        # Rank of each flipped bit among the frame's non-DF bits by certainty.
        margin = np.abs(soft[rows, :nbits])
        mine = np.take_along_axis(margin, pat, axis=1)  # (r, w)
        below = (margin[:, None, FIRST_BIT:] < mine[:, :, None]).sum(axis=2)
        ok = below.max(axis=1) < WEAKEST[w]
        rows, pat = rows[ok], pat[ok]
        bits[rows, :w] = pat
        count[rows] = w
    if max_bits >= 3:
        open_rows = np.flatnonzero((count == 0) & allowed)
        if open_rows.size:
            margin = np.abs(soft[open_rows, :nbits])
            hopeful = _few_doubtful(margin[:, FIRST_BIT:])
            open_rows, margin = open_rows[hopeful], margin[hopeful]
            found, cols = _chase(syn[open_rows], margin, nbits, 3)
            bits[open_rows[found], :3] = cols
            count[open_rows[found]] = 3
    return bits, count


def _few_doubtful(margin: np.ndarray) -> np.ndarray:
    """Rows with at most MAX_DOUBTFUL bits under DOUBTFUL x their mean margin.

    A weak reply that three flips can repair has few such bits (measured on the bursts
    of bench/bursts.py at 6-7 dB: at most 18, 99 % at most 16); noise and misaligned
    starts have many (median 52 on the busy real modes1 channel, where this leaves a
    sixteenth of the rows), and searching them only costs CPU and chances of a false
    match.
    """
    mean = margin.mean(axis=1, dtype=np.float32)
    return (margin < np.float32(DOUBTFUL) * mean[:, None]).sum(axis=1) <= MAX_DOUBTFUL


def _chase(
    syn: np.ndarray, margin: np.ndarray, nbits: int, weight: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows where exactly one `weight`-bit pattern among the WEAKEST[weight] least
    certain bits has syndrome `syn`, and that pattern."""
    weakest = WEAKEST[weight]
    inner = margin[:, FIRST_BIT:nbits]
    weak = np.argpartition(inner, weakest - 1, axis=1)[:, :weakest]
    weak += FIRST_BIT
    table = bit_syndromes(nbits)[weak]  # (m, weakest)
    cols = _pattern_columns(weakest, weight)
    x = table.take(cols[0], axis=1)
    for col in cols[1:]:
        x ^= table.take(col, axis=1)
    # Matches are rare: their flat indices, then the count per row (a per-row count
    # over every pattern cost more than the XORs).
    at = np.flatnonzero(x == syn[:, None])
    row, pattern = np.divmod(at, cols.shape[1])
    # Exactly one pattern: with code distance 6, two 3-bit patterns with one syndrome
    # are two codewords equally near the received word, and picking either is a guess.
    once = np.bincount(row, minlength=syn.size)[row] == 1
    rows, pattern = row[once], pattern[once]
    # The bits: the row's weakest-bit indices at the pattern's positions.
    return rows, weak[rows[:, None], cols[:, pattern].T].astype(np.int64)


def apply(msgs: np.ndarray, rows: np.ndarray, bits: np.ndarray) -> None:
    """Flip bits[i] (MSB-first indices, -1 = none) of msgs[rows[i]] in place."""
    for col in range(bits.shape[1]):
        b = bits[:, col]
        keep = b >= 0
        r, b = rows[keep], b[keep]
        msgs[r, b >> 3] ^= (0x80 >> (b & 7)).astype(np.uint8)


# Formats whose CRC covers every bit, DF included: a DF one bit away from these may be
# repaired to them (the CRC then judges the whole frame, as for any other bit).
_ES_DF_TABLE = np.zeros(32, dtype=bool)
_ES_DF_TABLE[[17, 18]] = True


def extended_squitter_df(df: np.ndarray, soft: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DF17/18 reachable by flipping the least certain DF bit, where that bit is the
    only difference.

    Weak replies lose more frames to a DF bit error than to any other single error
    (five bits decide whether the frame is sliced at all), and a DF bit is no less
    likely to be wrong than the others.

    Args:
        df: (m,) sliced downlink formats.
        soft: (m, 5) margins of the DF bits.
    Returns:
        (target, bit): target (m,) uint8 DF to try (0: none), bit (m,) the DF bit to flip.
    """
    weakest = np.argmin(np.abs(soft), axis=1)  # 0 = the DF's MSB
    mask = (1 << (FIRST_BIT - 1 - weakest)).astype(np.uint8)
    flipped = df.astype(np.uint8) ^ mask
    target = np.where(_ES_DF_TABLE[flipped], flipped, 0).astype(np.uint8)
    return target, weakest
