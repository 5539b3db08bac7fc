"""The table of source kinds: typed options refused at config load, a new kind found by
its URL, and IQ sources judging through the pipeline's one verifier."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest

from agent.cli import main
from agent.config import build_config
from agent.demod import Demodulator
from agent.errors import EXIT_CONFIG, ConfigError, SourceError
from agent.frame import Frame
from agent.pipeline import Pipeline
from agent.settings import as_dict
from agent.sources import KINDS, OpenContext, SourceKind, open_source, parse_source
from agent.sources.kind import SourceOptions, host_port
from agent.sources.options import Flag
from agent.verify import FrameVerifier, SourceGate
from bench import bursts
from tests.conftest import shared_data

MODES1_24 = "iq/modes1_2400.uc8"
DF17 = bytes.fromhex("8f4d2023587f345e35837e2218b2")  # address 4D2023


def _problems(*urls: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        build_config({"sources": list(urls), "site": {"lat": 100}})
    return err.value.problems


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:x.bin?format=sbs", "format 'sbs'"),
        ("file:x.bin?rate=1e6", "rate '1e6': supported are 2.0e6 and 2.4e6"),
        ("file:x.bin?repair=4", "repair '4': expected 1, 2 or 3"),
        ("file:x.bin?gain=40", "unknown option(s) gain"),
        ("beast://host:30005?format=avr", "unknown option(s) format"),
        ("beast://:30005", "no host"),
        ("avr://host:99999", "bad port"),
        ("avr://host?colour=red&size=2", "unknown option(s) colour, size"),
        ("rtlsdr://0?gain=x", "gain 'x': expected auto, adaptive or dB"),
        ("rtlsdr://0?gain=99", "gain '99': out of range 0-60 dB"),
        ("rtlsdr://0?freq=978e6", "unknown option(s) freq"),
        ("rtlsdr://?rate=3M", "rate '3M': supported are 2.0e6 and 2.4e6"),
        ("rtltcp://host:1234?ppm=1.5", "ppm '1.5': not an integer"),
        ("rtltcp://host:1234?biastee=2", "biastee '2': expected 0 or 1"),
        ("rtltcp://host:1234?serial=ROOF", "unknown option(s) serial"),
        ("serial:///dev/ttyUSB0?baud=fast", "baud 'fast': not a number"),
        ("serial:///dev/ttyUSB0?baud=0", "baud '0': must be positive"),
        ("serial:///dev/ttyUSB0?parity=E", "unknown option(s) parity"),
        ("serial://dev/ttyUSB0", "expected serial:///dev/... (three slashes"),
    ],
)
def test_bad_options_are_config_errors_naming_the_option(url: str, words: str) -> None:
    problems = _problems("beast://127.0.0.1:30005", url)
    assert f"sources.1: {url}: {words}" in "\n".join(problems)
    assert any(p.startswith("site.lat:") for p in problems)  # with the other errors
    assert not any(p.startswith("sources.0") for p in problems)


def test_a_bad_source_option_stops_run_with_exit_64(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--source", "rtlsdr://0?gain=loud", "--site", "ok"]) == EXIT_CONFIG
    assert "gain 'loud'" in capsys.readouterr().err


def test_sources_are_typed_at_load_and_written_back_as_urls() -> None:
    url = "rtltcp://10.0.0.2?rate=2.0M&gain=adaptive&ppm=-12&repair=1&retry=1"
    cfg = build_config({"sources": [url, "file:-?format=beast"]})
    tcp, stdin = cfg.sources
    assert tcp.kind.scheme == "rtltcp" and stdin.kind.scheme == "file"
    o = tcp.options
    assert (o.host, o.port, o.rate, o.gain, o.ppm, o.biastee) == (  # type: ignore[attr-defined]
        "10.0.0.2",
        1234,
        2.0e6,
        "adaptive",
        -12,
        None,
    )
    assert o.demod.repair_bits == 1 and o.demod.retry_weak  # type: ignore[attr-defined]
    assert as_dict(cfg)["sources"] == [url, "file:-?format=beast"]


def test_every_kind_has_its_own_scheme_and_advice() -> None:
    assert len({k.scheme for k in KINDS}) == len(KINDS)
    for kind in KINDS:
        assert kind.prefix.startswith(kind.scheme + ":")
        assert kind.usage.startswith(kind.prefix)
        assert kind.cannot_open_fix and kind.no_data_fix


class _CountOptions(SourceOptions):
    host: str
    port: int | None = None
    repeat: Flag = False


class _CountingSource:
    """Yields one frame per call, or two with repeat=1."""

    def __init__(self, name: str, repeat: bool, start: float):
        self.name = name
        self.counts: Counter[str] = Counter()
        self.repeat = repeat
        self.start = start

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        for i in range(2 if self.repeat else 1):
            self.counts["frames"] += 1
            yield Frame(DF17, self.start + i, source=self.name)


def test_a_new_kind_in_the_table_is_found_by_its_url() -> None:
    demo = SourceKind(
        scheme="demo",
        prefix="demo://",
        usage="demo://host?repeat=0|1",
        options=_CountOptions,
        locate=host_port,
        open=lambda url, o, ctx: _CountingSource(url, o.repeat, ctx.start_time),
        cannot_open_fix="-",
        no_data_fix="-",
    )
    table = (*KINDS, demo)
    spec = parse_source("demo://here?repeat=1", table)
    assert spec.kind is demo and spec.options == _CountOptions(host="here", repeat=True)
    src = spec.open(OpenContext(start_time=5.0))
    assert [f.rx_time for f in src.frames(threading.Event())] == [5.0, 6.0]
    with pytest.raises(SourceError, match=r"unknown option\(s\) loud"):
        parse_source("demo://here?loud=1", table)
    with pytest.raises(SourceError, match="unknown source scheme 'demo'"):
        parse_source("demo://here")  # not in the real table


# -- one verifier per pipeline ------------------------------------------------------------


def _iq_frames(verifier: FrameVerifier | None) -> list[Frame]:
    url = f"file:{shared_data(MODES1_24)}?rate=2.4e6"
    src = open_source(url, OpenContext(start_time=100.0, verifier=verifier))
    return list(src.frames(threading.Event()))


def test_an_iq_source_judges_through_the_pipelines_verifier_once() -> None:
    alone = _iq_frames(None)  # a private verifier: the pipeline judges them again
    assert alone and all(f.accepted is None for f in alone)
    reference = Pipeline(build_config({"filter": {"enabled": False}}), [])
    for f in alone:
        reference.handle(f)
    shared = Pipeline(build_config({"filter": {"enabled": False}}), [])
    judged = _iq_frames(shared.verifier)
    assert [(f.msg, f.rx_time) for f in judged] == [(f.msg, f.rx_time) for f in alone]
    assert all(f.accepted for f in judged)
    counted = Counter(shared.verifier.counts)  # by the demodulator, through its gate
    for f in judged:
        shared.handle(f)
    assert shared.verifier.counts == counted  # the pipeline did not count them again
    assert shared.verifier.counts == reference.verifier.counts
    assert shared.stats() == reference.stats()


def test_a_multi_bit_repair_needs_an_address_confirmed_before_it() -> None:
    verifier = FrameVerifier()
    gate = SourceGate(verifier)
    address = int.from_bytes(DF17[1:4], "big")
    # What a Demodulator does for one batch, in receive order: a 3-bit repair of an
    # unknown address at t=1, a clean frame confirming it at t=2, a 3-bit repair at t=3.
    gate.confirm_clean(17, address, 3, 1.0)
    gate.confirm_clean(17, address, 0, 2.0)
    gate.confirm_clean(17, address, 3, 3.0)
    gate.count_accepted([3 if df == 17 else 0 for df in range(32)])
    made = ((1.0, 3), (2.0, 0), (3.0, 3))  # the frames it made: receive time, repaired bits
    verdicts = list(gate.verdicts(3, [address] * 3, *zip(*made, strict=True)))
    assert verdicts == [False, True, True]
    # Judged as check() would have judged them one by one, counted once.
    assert verifier.counts == Counter(accepted_df17=2, unconfirmed_repair=1)
    # The pipeline takes the verdicts: nothing judged or counted again.
    pipeline = Pipeline(build_config({}), [])
    pipeline.verifier = verifier
    frames = [
        Frame(DF17, t, repaired_bits=bits, accepted=ok)
        for (t, bits), ok in zip(made, verdicts, strict=True)
    ]
    for f in frames:
        pipeline.handle(f)
    # verdicts() forgets its refusals: given again, all accepted.
    assert list(gate.verdicts(3, [address] * 3, *zip(*made, strict=True))) == [True] * 3
    pipeline.handle(Frame(DF17, 4.0, repaired_bits=3, accepted=False))
    assert verifier.counts == Counter(accepted_df17=2, unconfirmed_repair=1)


def test_the_verifier_takes_confirmations_from_several_threads() -> None:
    verifier = FrameVerifier()

    def confirm(base: int) -> None:
        for i in range(20_000):
            verifier.confirm_clean(17, base + i % 5000, 0, float(i))
            verifier.count_accepted([1 if df == 17 else 0 for df in range(32)])

    threads = [threading.Thread(target=confirm, args=(n << 16,)) for n in range(3)]
    for t in threads:
        t.start()
    for i in range(2_000):
        verifier.recent_addresses(float(i))
        verifier.check(Frame(DF17, float(i)))
    for t in threads:
        t.join()
    assert verifier.counts["accepted_df17"] == 3 * 20_000 + 2_000


def test_a_demodulators_refused_repairs_come_out_refused() -> None:
    """Weak bursts from addresses never heard clean: their multi-bit repairs leave the
    demodulator with Frame.accepted False (and are counted once, as check() would),
    the rest accepted; the verdicts are written as the frames are made."""
    rng = np.random.default_rng(5)
    clean = bursts.clean(rng, 2_400_000, 300)  # every burst its own address
    raw = bursts.at_snr(rng, clean, 6)
    verifier = FrameVerifier()
    demod = Demodulator(2.4e6, verifier=SourceGate(verifier))  # type: ignore[arg-type]
    step = 1 << 20
    frames = [f for i in range(0, len(raw), step) for f in demod.process_raw(raw[i : i + step])]
    frames += demod.flush()
    refused = [f for f in frames if f.accepted is False]
    assert refused and all(f.repaired_bits > 1 for f in refused)
    assert all(f.accepted is True for f in frames if f.repaired_bits <= 1)
    assert verifier.counts["unconfirmed_repair"] == len(refused)
    assert verifier.counts["accepted_df17"] == len(frames) - len(refused)
