"""The CRC gate's address memory under a feed of endless distinct addresses (issue 14)."""

from __future__ import annotations

import time

import numpy as np

from agent import verify
from agent.frame import Frame
from agent.verify import ADDRESS_KEEP_SLACK_S, FrameVerifier, refuse_unknown_addresses


def _df17(address: int) -> Frame:
    from agent.crc import crc24

    body = bytes([0x8D]) + address.to_bytes(3, "big") + bytes(7)
    return Frame(body + crc24(body).to_bytes(3, "big"), 0.0)


def test_confirming_100k_distinct_addresses_costs_microseconds_each() -> None:
    # It rebuilt the whole map on every confirmation past 4,096 addresses: 16 ms each
    # at 100,000, so this loop took minutes and a busy feed dropped most frames.
    v = FrameVerifier()
    t0 = time.process_time()
    for i in range(100_000):
        v.confirm(0x100000 + i, i * 1e-4)
    assert time.process_time() - t0 < 5.0
    assert v.seen_recently(0x100000, 10.0) and v.seen_recently(0x100000 + 99_999, 10.0)


def test_the_memory_is_bounded_and_the_least_recent_go_first() -> None:
    v = FrameVerifier(max_addresses=1000)
    for i in range(5000):
        v.confirm(i, 1.0)
    v.confirm(4000, 1.0)  # confirmed again: now the most recent
    assert len(v.recent_addresses(1.0)) == 1000
    assert v.counts["recent_addresses_evicted"] == 4000
    assert v.seen_recently(4999, 1.0) and v.seen_recently(4000, 1.0)
    assert not v.seen_recently(3999, 1.0) and not v.seen_recently(0, 1.0)


def test_expired_addresses_are_forgotten_as_time_goes_on() -> None:
    v = FrameVerifier(address_ttl_s=60.0)
    for i in range(1000):
        v.confirm(i, float(i))
    # Kept a little past their trust (a source behind in time may still ask) ...
    assert v.seen_recently(999 - 60, 999.0) and not v.seen_recently(999 - 61, 999.0)
    assert len(v._recent) == 60 + ADDRESS_KEEP_SLACK_S + 1
    # ... and a source behind by less than the slack finds what it could trust.
    assert v.seen_recently(999 - 100, 999.0 - 50.0)


def test_known_addresses_answers_as_seen_recently_does() -> None:
    v = FrameVerifier(address_ttl_s=60.0)
    v.confirm(0xABCDEF, 10.0)
    v.confirm(0x123456, 100.0)
    asked = [0xABCDEF, 0x123456, 0x000001]
    for now in (5.0, 10.0, 70.0, 71.0, 100.0, 160.0, 161.0):
        expected = [v.seen_recently(a, now) for a in asked]
        assert v.known_addresses(asked, now).tolist() == expected


def test_known_addresses_answers_as_seen_recently_does_many_or_few_remembered() -> None:
    """Both ways of answering (a copy of the remembered addresses when they are few
    beside those asked, one lookup each when they are many) agree with seen_recently,
    at the edges of the trust too."""
    rng = np.random.default_rng(7)
    v = FrameVerifier(address_ttl_s=60.0)
    for i, a in enumerate(rng.choice(1 << 24, size=400, replace=False).tolist()):
        v.confirm(a, float(i) / 4)  # 0-100 s
    remembered = list(v._recent)
    for asked_n in (10, 50, 99, 101, 2000):  # 400 remembered: lookups, then a copy
        asked = np.concatenate(
            (rng.choice(remembered, asked_n // 2), rng.integers(0, 1 << 24, asked_n - asked_n // 2))
        )
        for now in (0.0, 40.0, 60.25, 99.75, 160.0, 160.25, 500.0):
            expected = [v.seen_recently(int(a), now) for a in asked]
            assert v.known_addresses(asked, now).tolist() == expected
            assert v.known_addresses(asked.tolist(), now).tolist() == expected
    assert FrameVerifier().known_addresses(np.array([1, 2], dtype=np.int64), 0.0).tolist() == [
        False,
        False,
    ]


def test_batch_filter_takes_batch_confirmations_and_remembered_ones() -> None:
    v = FrameVerifier()
    v.check(_df17(0x4D2023))
    kind = np.array([verify.ADDRESSED, verify.ADDRESSED, verify.ADDRESSED, verify.CLEAN_ES])
    df = np.array([4, 4, 4, 17])
    syn = np.array([0x4D2023, 0xABCDEF, 0x777777, 0])
    msgs = np.zeros((4, 14), dtype=np.uint8)
    msgs[3, 1:4] = [0xAB, 0xCD, 0xEF]
    refuse_unknown_addresses(v, kind, df, syn, msgs, 1.0)
    assert kind.tolist() == [verify.ADDRESSED, verify.ADDRESSED, verify.INVALID, verify.CLEAN_ES]
