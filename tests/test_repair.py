"""Syndrome repair guided by bit margins (agent/demod/repair.py), on a real frame."""

from __future__ import annotations

import numpy as np
import pytest

from agent.crc import flip_bit, syndrome
from agent.demod import repair

# A real DF17 from the readsb reference output for modes1 (aircraft 4D2023).
DF17 = bytes.fromhex("8f4d2023587f345e35837e2218b2")


def _received(errors: list[int], weak: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Syndrome and margins of DF17 received with `errors` flipped; `weak` bits unsure."""
    msg = DF17
    for bit in errors:
        msg = flip_bit(msg, bit)
    bits = np.unpackbits(np.frombuffer(msg, dtype=np.uint8)).astype(np.float32)
    soft = np.where(bits > 0, 1.0, -1.0).astype(np.float32)
    for rank, bit in enumerate(weak):
        soft[bit] *= 0.01 * (rank + 1)
    return np.array([syndrome(msg)], dtype=np.uint32), soft[None, :]


def _repaired(syn: np.ndarray, soft: np.ndarray, max_bits: int) -> bytes | None:
    bits, count = repair.find(syn, soft, 112, max_bits)
    if count[0] == 0:
        return None
    msgs = np.packbits(soft > 0, axis=1)
    repair.apply(msgs, np.array([0]), bits)
    return msgs[0].tobytes()


@pytest.mark.parametrize("errors", [[40], [9, 100], [12, 57, 88]])
def test_errors_among_the_least_certain_bits_are_repaired(errors: list[int]) -> None:
    syn, soft = _received(errors, weak=[*errors, 30, 31, 70])
    assert _repaired(syn, soft, max_bits=len(errors)) == DF17


def test_fewer_bits_allowed_than_errors_repairs_nothing() -> None:
    syn, soft = _received([12, 57, 88], weak=[12, 57, 88])
    assert _repaired(syn, soft, max_bits=2) is None


def test_a_confident_bit_is_never_flipped() -> None:
    # The error sits on a bit the slicer was sure of: a repair would be a guess.
    weak = list(range(60, 60 + repair.WEAKEST[1]))
    syn, soft = _received([20], weak=weak)
    assert _repaired(syn, soft, max_bits=3) is None


@pytest.mark.parametrize("errors", [[12, 57], [12, 57, 88]])
def test_more_than_one_bit_is_repaired_only_where_allowed(errors: list[int]) -> None:
    syn, soft = _received(errors, weak=errors)
    _, count = repair.find(syn, soft, 112, 3, search=np.array([False]))
    assert count[0] == 0
    _, count = repair.find(syn, soft, 112, 3, search=np.array([True]))
    assert count[0] == len(errors)


def test_one_bit_is_repaired_even_where_more_are_not_allowed() -> None:
    syn, soft = _received([40], weak=[40])
    _, count = repair.find(syn, soft, 112, 3, search=np.array([False]))
    assert count[0] == 1


def test_df_bits_are_not_repaired_as_ordinary_bits() -> None:
    syn, soft = _received([2], weak=[2])
    assert _repaired(syn, soft, max_bits=3) is None


def test_a_df_one_bit_from_df17_points_at_its_least_certain_bit() -> None:
    soft = np.ones((3, 112), dtype=np.float32)
    soft[:, 1] = 0.1  # the second DF bit is the least certain
    df = np.array([0b11001, 0b01011, 0b10001], dtype=np.uint8)  # 25, 11, 17
    target, bit = repair.extended_squitter_df(df, soft[:, :5])
    assert target.tolist() == [17, 0, 0]  # 11 and 17 are not one bit from 17/18 there
    assert bit[0] == 1


def test_false_match_odds_grow_with_bits() -> None:
    odds = [repair.false_match_odds(n) for n in (1, 2, 3)]
    assert odds == sorted(odds)
    assert odds[0] == pytest.approx(repair.WEAKEST[1] / 2**24)
