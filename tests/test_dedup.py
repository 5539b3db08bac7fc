"""Frames heard by two sources count once; repeats from one source pass."""

from agent.dedup import DuplicateFilter
from agent.frame import Frame

MSG = bytes.fromhex("8f4d2023587f345e35837e2218b2")


def test_same_frame_from_another_source_within_the_window_is_dropped():
    d = DuplicateFilter(window_s=1.0)
    assert not d.is_duplicate(Frame(MSG, 10.00, source="dongle"))
    assert d.is_duplicate(Frame(MSG, 10.05, source="beast://n:30005"))
    assert d.counts["duplicate_from_beast://n:30005"] == 1


def test_repeats_from_one_source_and_late_copies_pass():
    d = DuplicateFilter(window_s=1.0)
    assert not d.is_duplicate(Frame(MSG, 10.0, source="dongle"))
    assert not d.is_duplicate(Frame(MSG, 10.5, source="dongle"))
    assert not d.is_duplicate(Frame(MSG, 12.0, source="beast"))
