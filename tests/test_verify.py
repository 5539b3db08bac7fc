"""CRC gate: what may reach pyModeS, on real frames."""

from __future__ import annotations

import numpy as np

from agent import verify
from agent.crc import flip_bit, single_bit_syndromes, syndrome, syndromes
from agent.frame import Frame
from agent.verify import MAX_CONFIRMING_REPAIR, FrameVerifier, Reject, SourceGate
from tests.conftest import shared_data
from tests.helpers import pms_adsb_frames

# Real frames from the readsb reference output for modes1 (aircraft 4D2023).
DF17 = bytes.fromhex("8f4d2023587f345e35837e2218b2")
DF11 = bytes.fromhex("5d4d20237a55af")


def _reference_frames() -> list[bytes]:
    path = shared_data("reference/readsb_modes1.txt")
    return [bytes.fromhex(line) for line in path.read_text().split()]


def test_vectorised_syndromes_match_per_frame():
    long = [m for m in _reference_frames() if len(m) == 14]
    arr = np.frombuffer(b"".join(long), dtype=np.uint8).reshape(-1, 14)
    assert list(syndromes(arr)) == [syndrome(m) for m in long]


def test_every_single_bit_error_has_a_unique_syndrome():
    table = single_bit_syndromes(112)
    assert len(table) == 112 - 5
    for bit in (5, 40, 111):
        assert table[syndrome(flip_bit(DF17, bit))] == bit


def test_address_parity_frames_need_a_recent_clean_address():
    v = FrameVerifier(address_ttl_s=60)
    df4 = [m for m in _reference_frames() if m[0] >> 3 in (0, 4, 5, 20, 21)]
    assert df4, "reference has surveillance replies"
    before = v.check(Frame(df4[0], 0.0))
    assert not before.accepted and before.reason is Reject.UNKNOWN_ADDRESS
    assert v.check(Frame(DF17, 1.0)).accepted
    after = v.check(Frame(df4[0], 2.0))
    assert after.accepted and after.icao == 0x4D2023
    # ...and the trust expires.
    assert not v.check(Frame(df4[0], 100.0)).accepted


def test_corrupted_df17_is_rejected_and_counted():
    v = FrameVerifier()
    assert not v.check(Frame(flip_bit(DF17, 60), 0.0)).accepted
    assert v.counts["bad_crc"] == 1
    assert not v.check(Frame(DF17[:7], 0.0)).accepted
    assert v.counts["bad_length"] == 1


def test_all_reference_frames_pass_the_gate_in_order():
    """readsb accepted every one of these; our gate must agree on the same stream."""
    v = FrameVerifier()
    frames = _reference_frames()
    accepted = sum(v.check(Frame(m, i * 0.001)).accepted for i, m in enumerate(frames))
    assert accepted >= len(frames) - 2, v.counts


def test_real_adsb_sample_is_clean():
    v = FrameVerifier()
    frames = pms_adsb_frames(shared_data("messages/pms_sample_data_adsb.csv"))
    assert all(v.check(f).accepted for f in frames)


def test_recent_addresses_lists_what_seen_recently_accepts():
    v = FrameVerifier(address_ttl_s=60)
    assert v.recent_addresses(0.0) == []
    v.check(Frame(DF17, 1.0))
    assert v.recent_addresses(2.0) == [0x4D2023]
    assert v.recent_addresses(100.0) == []
    assert v.seen_recently(0x4D2023, 2.0) and not v.seen_recently(0x4D2023, 100.0)


def test_a_given_syndrome_is_used_instead_of_recomputing():
    v = FrameVerifier()
    assert v.check(Frame(DF17, 0.0), 0).accepted
    # The caller's syndrome is trusted: a wrong one gives the wrong verdict.
    assert not v.check(Frame(DF17, 0.0), 1).accepted


def test_accept_clean_counts_and_confirms_as_check_does():
    # The demodulator's fast path for frames whose syndrome it computed as 0.
    clean = [m for m in _reference_frames() if m[0] >> 3 in (11, 17, 18) and syndrome(m) == 0]
    assert clean
    judged, fast = FrameVerifier(), FrameVerifier()
    for i, m in enumerate(clean):
        assert judged.check(Frame(m, float(i))).accepted
        fast.accept_clean(Frame(m, float(i)))
    assert fast.counts == judged.counts
    assert fast.recent_addresses(len(clean)) == judged.recent_addresses(len(clean))


def test_multi_bit_repairs_need_an_address_confirmed_by_another_frame():
    v = FrameVerifier(address_ttl_s=60)
    repaired3 = Frame(DF17, 1.0, repaired_bits=3)
    first = v.check(repaired3)
    assert not first.accepted and first.reason is Reject.UNCONFIRMED_REPAIR
    assert v.counts["unconfirmed_repair"] == 1
    # ... and it did not confirm its own address: a DF11 with an IID still needs one.
    assert not v.seen_recently(0x4D2023, 1.0)
    assert v.check(Frame(DF17, 2.0, repaired_bits=1)).accepted  # confirms 4D2023
    assert v.check(Frame(DF17, 3.0, repaired_bits=3)).accepted


def test_multi_bit_repairs_do_not_confirm_on_the_fast_path():
    v = FrameVerifier()
    v.accept_clean(Frame(DF17, 1.0, repaired_bits=2))
    assert v.counts["accepted_df17"] == 1
    assert not v.seen_recently(0x4D2023, 1.0)
    v.accept_clean(Frame(DF17, 2.0, repaired_bits=1))
    assert v.seen_recently(0x4D2023, 2.0)


def test_batched_confirmations_are_those_of_one_call_per_frame():
    # The demodulator hands its confirmations over in batches: the same addresses,
    # times and (through a SourceGate) refusals as one confirm_clean per frame.
    address = 0x4D2023
    batch = [(17, address, 3, 1.0), (11, 0x111111, 0, 1.5), (17, address, 0, 2.0)]
    batch += [(17, address, 3, 3.0), (18, 0x222222, 0, 3.5), (17, 0x333333, 2, 4.0)]
    one, many = FrameVerifier(), FrameVerifier()
    for frame in batch:
        one.confirm_clean(*frame)
    many.confirm_clean_many(batch)
    assert many.recent_addresses(5.0) == one.recent_addresses(5.0) == [0x111111, address]
    judged = [(a, t, bits) for _df, a, bits, t in batch[::3]]
    one_gate, many_gate = SourceGate(FrameVerifier()), SourceGate(FrameVerifier())
    for frame in batch:
        one_gate.confirm_clean(*frame)
    many_gate.confirm_clean_many(batch)
    verdicts = list(many_gate.verdicts(2, *zip(*judged, strict=True)))
    assert verdicts == list(one_gate.verdicts(2, *zip(*judged, strict=True))) == [False, True]
    assert many_gate.verifier.recent_addresses(5.0) == one_gate.verifier.recent_addresses(5.0)


def _classes(msgs: list[bytes]) -> list[int]:
    rows = np.zeros((len(msgs), 14), dtype=np.uint8)
    for i, m in enumerate(msgs):
        rows[i, : len(m)] = np.frombuffer(m, dtype=np.uint8)
    df = rows[:, 0] >> 3
    syn = np.array([syndrome(m) for m in msgs], dtype=np.uint32)
    return verify.classify(df, syn).tolist()


def test_batch_classes_agree_with_check_per_frame():
    """The demodulator judges in batches by verify.classify: the same verdicts as check()."""
    frames = _reference_frames()
    # Every reference frame, and each with a bit flipped (bad CRC, other addresses).
    msgs = frames + [flip_bit(m, 3 * i % (8 * len(m))) for i, m in enumerate(frames)]
    classes = _classes(msgs)
    assert {verify.CLEAN_ES, verify.CLEAN_DF11, verify.ADDRESSED, verify.INVALID} <= set(classes)
    for known in (False, True):
        for m, kind in zip(msgs, classes, strict=True):
            v = FrameVerifier()  # per frame: no frame confirms another's address
            aa = int.from_bytes(m[1:4], "big")
            address = aa if m[0] >> 3 == 11 else syndrome(m)
            if known:  # the address trusted: only format and parity decide
                v.confirm(aa, 0.0)
                v.confirm(address, 0.0)
            verdict = v.check(Frame(m, 0.0))
            if kind >= verify.SELF_CHECKED:
                assert verdict.accepted, m.hex()
            elif kind == verify.ADDRESSED:
                assert verdict.accepted == known, m.hex()
            else:
                assert not verdict.accepted, m.hex()


def test_repaired_class_follows_the_confirming_repair_limit():
    bits = np.array([1, 2, 3])
    expected = [verify.REPAIRED if b <= MAX_CONFIRMING_REPAIR else verify.REPAIRED2 for b in bits]
    assert verify.repaired_class(bits).tolist() == expected


def test_unknown_addresses_are_refused_unless_trusted_or_confirmed_alongside():
    df4 = next(m for m in _reference_frames() if m[0] >> 3 == 4)
    rows = np.zeros((2, 14), dtype=np.uint8)
    rows[0] = np.frombuffer(DF17, dtype=np.uint8)
    rows[1, :7] = np.frombuffer(df4, dtype=np.uint8)
    df = rows[:, 0] >> 3
    syn = np.array([0, syndrome(df4)], dtype=np.uint32)
    for kinds, trusted, expected in (
        # The DF17 in the same batch confirms the DF4's address 4D2023.
        ([verify.CLEAN_ES, verify.ADDRESSED], False, verify.ADDRESSED),
        # Without it, nothing does: refused...
        ([verify.INVALID, verify.ADDRESSED], False, verify.INVALID),
        # ...unless the verifier trusts the address.
        ([verify.INVALID, verify.ADDRESSED], True, verify.ADDRESSED),
    ):
        v = FrameVerifier()
        if trusted:
            v.check(Frame(DF17, 0.0))
        kind = np.array(kinds, dtype=np.int8)
        verify.refuse_unknown_addresses(v, kind, df, syn, rows, 1.0)
        assert kind[1] == expected
