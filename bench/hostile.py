"""Hostile input (issue 14): what the agent costs when the input is not a sky of aircraft.

    python bench/hostile.py [verify|tracks|pulses|mqtt ...]     (default: all four)

Each section runs in a child process of its own, so that its peak RSS is its own.
ADSB_AGENT_REPO=/path/to/a/checkout measures that checkout's agent/ instead of this
one (how the figures before the fixes were taken: the same file against main).

verify  A feed of many distinct addresses: the CRC gate's address memory holding 5,000
        or 100,000 recently confirmed addresses, CPU per confirmation of a new one;
        then frames/s through the whole pipeline (verify, decode, track, records to a
        discarded stdout) when every frame is a clean DF17 of a new address, with
        100,000 addresses already remembered.
tracks  The same feed, 121,000 distinct addresses within a minute, frames marked as
        judged already (the gate is measured above): aircraft held in the track table
        at the end, tracks ended for room, peak RSS.
pulses  Random pulses at 2.0 MS/s, 1.2 s of UC8 I/Q (numpy, seeded): every 1 us slot
        holds a pulse with probability 0.5 (a random carrier phase each), 60 ADC units
        over receiver noise of 3 (of the patterns tried, the costliest before the caps:
        0.5 us slots cost a quarter as much). Demodulated in the IQ file source's blocks
        (agent/sources/iq.py BLOCK_SAMPLES) and once as one 1.2 s block: CPU seconds,
        peak RSS, DF17/18 frames the CRC gate accepts (all false: nothing was sent),
        and the demodulator's skip counters.
mqtt    A real mosquitto with `message_size_limit 400` (MQTT 5; mosquitto answers a
        larger PUBLISH with PUBACK 0x95, which paho cannot parse: it drops the link)
        and with `max_packet_size 400` (announced in the CONNACK), and with
        `message_size_limit 1000`. 40 records, one in ten padded to 1.4 kB; the rest
        are 550 bytes (no record of the schema is under 400 bytes, and a compressed
        batch of 26 is 850). Records delivered to a subscriber within 30 s, records
        set aside, reconnects, and what the link state says.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

REPO = Path(os.environ.get("ADSB_AGENT_REPO", Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(REPO))

SECTIONS = ("verify", "tracks", "pulses", "mqtt")
# A real airborne-position DF17 (OpenSky, aircraft 484506): address and parity replaced.
_POSITION = bytes.fromhex("8d484506680732e232f2abda0ee9")


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _df17(address: int) -> bytes:
    from agent.crc import crc24

    body = _POSITION[:1] + address.to_bytes(3, "big") + _POSITION[4:11]
    return body + crc24(body).to_bytes(3, "big")


def _remember(verifier, n: int, now: float) -> None:
    """Fill the verifier's address memory with `n` addresses confirmed at `now`."""
    for a in range(n):
        verifier._recent[0x800000 + a] = now


def bench_verify() -> None:
    import io

    from agent.config import build_config
    from agent.frame import Frame
    from agent.outputs.stdout import StdoutPublisher
    from agent.pipeline import Pipeline
    from agent.verify import FrameVerifier

    for held in (5_000, 100_000):
        v = FrameVerifier()
        _remember(v, held, 0.0)
        n = 200 if held > 10_000 else 2_000
        t0 = time.process_time()
        for i in range(n):
            v.confirm(0x100000 + i, 1.0)
        per = (time.process_time() - t0) / n
        print(f"verify: confirm a new address with {held:,} remembered: {per * 1e6:.1f} us")
    pipeline = Pipeline(
        build_config({"filter": {"enabled": False}}), [StdoutPublisher(io.StringIO())]
    )
    _remember(pipeline.verifier, 100_000, 0.0)
    frames = [Frame(_df17(0x100000 + i), 1.0 + i * 1e-4) for i in range(200_000)]
    t0 = time.process_time()
    done = 0
    for f in frames:
        pipeline.handle(f)
        done += 1
        if done % 500 == 0 and time.process_time() - t0 > 10.0:
            break
    cpu = time.process_time() - t0
    print(
        f"verify: pipeline, every frame a new address, 100,000 remembered: "
        f"{done / cpu:,.0f} frames/s ({done:,} frames in {cpu:.1f} CPU s)"
    )


def bench_tracks() -> None:
    import io

    from agent.config import build_config
    from agent.frame import Frame
    from agent.outputs.stdout import StdoutPublisher
    from agent.pipeline import Pipeline

    pipeline = Pipeline(
        build_config({"filter": {"enabled": False}}), [StdoutPublisher(io.StringIO())]
    )
    pipeline.verifier.address_ttl_s = 60.0
    n = 121_000
    t0 = time.process_time()
    for i in range(n):
        # Judged already (as an IQ source's frames are): the track table alone is measured.
        pipeline.handle(Frame(_df17(0x100000 + i), 1.0 + i * (50.0 / n), accepted=True))
    cpu = time.process_time() - t0
    counts = pipeline.tracker.counts
    print(
        f"tracks: {n:,} distinct addresses in 50 s: {len(pipeline.tracker.aircraft):,} aircraft "
        f"held, {counts['tracks_evicted']:,} ended for room, {cpu:.1f} CPU s, "
        f"peak RSS {_peak_rss_mib():.0f} MiB"
    )


def random_pulses(
    seconds: float = 1.2, rate: float = 2.0e6, pulse_us: float = 1.0, seed: int = 14
) -> bytes:
    """UC8 I/Q of random pulses over receiver noise (see the module docstring)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    slot = (np.arange(n) / (rate * pulse_us * 1e-6)).astype(np.int64)  # pulse slot per sample
    on = rng.random(slot[-1] + 1) < 0.5
    amp = np.where(on, 60.0, 0.0)[slot]
    phase = rng.uniform(0.0, 2 * np.pi, slot[-1] + 1)[slot]  # one carrier phase per pulse
    iq = np.empty((n, 2))
    iq[:, 0] = 127.5 + amp * np.cos(phase) + rng.normal(0.0, 3.0, n)
    iq[:, 1] = 127.5 + amp * np.sin(phase) + rng.normal(0.0, 3.0, n)
    return np.clip(iq, 0, 255).astype(np.uint8).tobytes()


def _pulses_once(block_samples: int) -> None:
    from agent.demod import Demodulator
    from agent.frame import Frame
    from agent.verify import FrameVerifier

    raw = random_pulses()
    demod = Demodulator(2.0e6)
    gate = FrameVerifier()
    t0 = time.process_time()
    frames: list[Frame] = []
    step = 2 * block_samples
    for k in range(0, len(raw), step):
        frames += demod.process_raw(raw[k : k + step])
    frames += demod.flush()
    cpu = time.process_time() - t0
    accepted = Counter(f.df for f in frames if gate.check(f).accepted)
    false_es = accepted[17] + accepted[18]
    c = demod.counts
    print(
        f"pulses: 1.2 s at 2.0 MS/s in blocks of {block_samples:,} samples: {cpu:.2f} CPU s, "
        f"peak RSS {_peak_rss_mib():.0f} MiB, frames out by DF "
        f"{dict(sorted(Counter(f.df for f in frames).items()))}, {false_es} false "
        f"DF17/18 accepted; candidates {c['candidates']:,}, preambles_skipped "
        f"{c['preambles_skipped']:,}, retries_skipped {c['retries_skipped']:,}"
    )


def bench_pulses() -> None:
    from agent.sources.iq import BLOCK_SAMPLES

    for block in (BLOCK_SAMPLES, 2_400_000):
        _child(["_pulses", str(block)])


def bench_mqtt() -> None:
    from agent.config import MqttConfig, SiteConfig
    from agent.outbox import Outbox
    from agent.outputs.mqtt import MqttPublisher
    from agent.records import position_record
    from tests.conftest import Broker
    from tests.helpers import strip_aircraft
    from tests.mqtt_helpers import Subscriber

    site = SiteConfig(name="strip-01", lat=-15.6, lon=-56.1, elevation_ft=600)
    records = []
    for i in range(40):
        r = position_record(strip_aircraft(i), site, ("low",))
        if i % 10 == 3:
            r["tags"] = [f"{k}" * 80 for k in range(10)]
        records.append(r)
    for limit, batch_s in (
        ("message_size_limit 1000", 0.0),
        ("message_size_limit 400", 0.0),
        ("message_size_limit 400", 0.5),
        ("max_packet_size 400", 0.0),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            broker = Broker(d, f"{limit}\nallow_anonymous true\n").start()
            sub = Subscriber(broker.port, "adsb/v1/#")
            cfg = MqttConfig(url=broker.url, batch_s=batch_s)
            pub = MqttPublisher(cfg, "strip-01", Outbox(d / "outbox.sqlite")).start()
            pub.wait_connected(10)
            t0 = time.monotonic()
            for r in records:
                pub.publish(r)
            drained = pub.flush(30.0)
            took = time.monotonic() - t0
            time.sleep(0.5)  # the last deliveries reach the subscriber
            got = set()
            for _, payload in sub.records():
                got.add(payload["seq"])
            for batch in sub.payloads("adsb/v1/strip-01/positions"):
                got.update(r["seq"] for r in json.loads(zlib.decompress(batch)))
            state = pub.link_state()
            print(
                f"mqtt: {limit}, batch_s {batch_s:g}: {len(got)} of {len(records)} records "
                f"delivered, {pub.counts['set_aside']} set aside, outbox "
                f"{'empty' if drained else f'stuck at {pub.outbox.depth}'} after {took:.1f} s, "
                f"{pub.counts['disconnects']} disconnects; link state: "
                f"{getattr(state, 'set_aside_last', None) or state.refused or 'no reason given'}"
            )
            pub.close(1)
            sub.close()
            broker.stop()


def _child(args: list[str]) -> None:
    subprocess.run([sys.executable, __file__, *args], check=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["_pulses"]:
        _pulses_once(int(argv[1]))
        return
    if argv[:1] == ["_run"]:
        {
            "verify": bench_verify,
            "tracks": bench_tracks,
            "pulses": bench_pulses,
            "mqtt": bench_mqtt,
        }[argv[1]]()
        return
    for section in argv or SECTIONS:
        if section not in SECTIONS:
            sys.exit(f"unknown section {section!r}; choose from {', '.join(SECTIONS)}")
        _child(["_run", section])


if __name__ == "__main__":
    main(sys.argv[1:])
