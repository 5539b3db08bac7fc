"""frames_from_columns: the demodulator's bulk Frame constructor must give what
Frame(...) gives (equality, hashing, dataclasses.replace, frozenness)."""

from __future__ import annotations

import dataclasses
from itertools import repeat

import pytest

from agent.frame import Frame, frames_from_columns


def test_frames_from_columns_equal_frame_constructor() -> None:
    msgs = [bytes.fromhex("8D4840D6202CC371C32CE0576098"), bytes.fromhex("5D4840D6C0FFEE")]
    built = frames_from_columns(
        2,
        msg=msgs,
        rx_time=[1.5, 2.5],
        signal_dbfs=iter([-10.0, -20.0]),
        source=repeat("iq"),
        ticks_12mhz=[12, 34],
        repaired_bits=[0, 1],
        ticks_epoch=repeat(3),
    )
    expected = [
        Frame(msgs[0], 1.5, -10.0, "iq", 12, 0, ticks_epoch=3),
        Frame(msgs[1], 2.5, -20.0, "iq", 34, 1, ticks_epoch=3),
    ]
    assert built == expected
    assert [hash(f) for f in built] == [hash(f) for f in expected]
    assert built[1].accepted is None  # a default
    assert dataclasses.replace(built[0], accepted=True) == dataclasses.replace(
        expected[0], accepted=True
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        built[0].rx_time = 0.0  # type: ignore[misc]


def test_frames_from_columns_refuses_unknown_and_missing_fields() -> None:
    with pytest.raises(TypeError, match="unknown"):
        frames_from_columns(1, msg=[b""], rx_time=[0.0], bogus=[1])
    with pytest.raises(TypeError, match="rx_time"):
        frames_from_columns(1, msg=[b""])
