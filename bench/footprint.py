"""Footprint of the whole agent beside dump1090-mutability: CPU per IQ second, peak RSS.

    python bench/footprint.py [--repeat-busy 300] [--quiet-s 53] [--rounds 1] [--keep DIR]
                              [--baseline TREE]

Two IQ streams (2.4 MS/s UC8), each written once to a temporary file:
- busy: shared/data/iq/modes1_2400.uc8 (a real capture, about 2,000 frames per second)
  repeated `--repeat-busy` times (300: 53 s of IQ);
- quiet: the built-in scenario's air (agent/sim: noise and three aircraft) for
  `--quiet-s` seconds, rendered in a child process so this one stays small.

Every program runs as a child of this process and is measured by os.wait4: CPU (user +
system) and peak RSS (ru_maxrss) of its whole run, start-up included. This process
imports neither numpy nor the agent, so what a child inherits at exec is small (its
own peak RSS is printed as the floor under every figure). Runs per stream:
- dump1090-mutability --ifile FILE --quiet --write-json DIR  (its full decode)
- dump1090-mutability --ifile - --raw                         (demodulator only, stdin)
- adsb-agent demod FILE > /dev/null
- adsb-agent run --source file:FILE --mqtt (a local mosquitto) --state-dir DIR, the GA
  filter on (the default) and the receiver's position given: the whole agent, records
  through the outbox to the broker.
With `--rounds N` every run is repeated N times, interleaved, and the least CPU counts
(the machine is shared: other load only ever adds CPU). Figures from one invocation
are comparable with each other; ratios are what to compare across invocations.
`--baseline TREE` also runs `demod` and `run` from another checkout (e.g. `git
worktree add /tmp/base main`), interleaved with these, for before/after in one run.

Every checkout measured has its `agent` package byte-compiled first (`compileall`, into
its own __pycache__), as pip does when install.sh installs the agent: a source tree run
where bytecode is never written (PYTHONDONTWRITEBYTECODE, as on some CI machines)
would otherwise compile every module at every start, about 0.1 CPU s that no
installed agent spends.

Start-up: `adsb-agent --help` and `adsb-agent check` wall time and whether numpy was
imported (a child that runs the command and then looks at sys.modules), and the wall
time from starting `adsb-agent demod` on the busy stream to its first frame line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.broker import BenchBroker  # noqa: E402  (stdlib only: this process stays small)

RATE = 2.4e6
DUMP1090 = "dump1090-mutability"
AGENT = [sys.executable, "-m", "agent"]
AGENT_TREES: dict[str, Path] = {"": REPO}  # label suffix -> checkout (--baseline adds one)
BUSY_SITE = ("52.0", "4.5")  # near modes1's traffic (local CPR decoding needs one)
# The built-in scenario's site (agent/sim/scenario.py SITE_LAT, SITE_LON).
QUIET_SITE = ("-15.60", "-56.10")
# Targets (issue 15).
MAX_RUN_VS_DUMP1090 = 5.0
MAX_DEMOD_VS_RAW = 2.5
MAX_RUN_RSS_MIB = 64.0
MAX_FIRST_FRAME_S = 1.0

_RENDER_QUIET = """
import sys
from agent.sim.scenario import render_demo_iq
out, seconds = sys.argv[1], float(sys.argv[2])
with open(out, "wb") as fh:
    t = 0.0
    while t < seconds:
        step = min(5.0, seconds - t)
        iq, _ = render_demo_iq(t, step, sample_rate=2.4e6, fmt="uc8")
        fh.write(iq)
        t += step
"""

_NUMPY_AFTER = """
import contextlib, io, sys
from agent.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print("numpy" in sys.modules)
"""


@dataclass
class Measured:
    name: str
    cpu_s: float
    wall_s: float
    peak_rss_mib: float
    rc: int

    def per_iq_s(self, iq_s: float) -> float:
        return self.cpu_s / iq_s


def measure(name: str, cmd: list[str], *, stdin: Path | None = None, **kw: object) -> Measured:
    """Run `cmd` to its end; CPU and peak RSS of that child alone (os.wait4)."""
    t0 = time.monotonic()
    fin = stdin.open("rb") if stdin is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            cmd, stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdin is not None:
            fin.close()  # type: ignore[union-attr]
    wall = time.monotonic() - t0
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(name, cpu, wall, usage.ru_maxrss / 1024, proc.returncode)


def byte_compile(tree: Path) -> None:
    """The checkout's agent package as pip installs it: bytecode beside the sources."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "agent")], check=True)


def make_busy(out: Path, repeat: int) -> float:
    shared = Path(os.environ.get("ADSB_AGENT_SHARED", REPO.parent / "shared"))
    data = (shared / "data" / "iq" / "modes1_2400.uc8").read_bytes()
    with out.open("wb") as fh:
        for _ in range(repeat):
            fh.write(data)
    return repeat * len(data) / 2 / RATE


def make_quiet(out: Path, seconds: float) -> float:
    subprocess.run(
        [sys.executable, "-c", _RENDER_QUIET, str(out), str(seconds)], check=True, cwd=REPO
    )
    return out.stat().st_size / 2 / RATE


def runs_for(
    stream: Path, site: tuple[str, str], broker: BenchBroker, tmp: Path
) -> list[tuple[str, list[str], dict]]:
    """(name, command, Popen extras) of each program measured on `stream`."""
    exe = shutil.which(DUMP1090) or f"/usr/bin/{DUMP1090}"
    json_dir = tmp / "json"
    json_dir.mkdir(exist_ok=True)
    runs: list[tuple[str, list[str], dict]] = [
        (
            "dump1090 full",
            [exe, "--ifile", str(stream), "--quiet", "--write-json", str(json_dir)],
            {},
        ),
        ("dump1090 --raw", [exe, "--ifile", "-", "--raw"], {"stdin": stream}),
    ]
    for suffix, tree in AGENT_TREES.items():
        runs += _agent_runs(stream, site, broker, tmp, suffix, tree)
    return runs


def _agent_runs(
    stream: Path, site: tuple[str, str], broker: BenchBroker, tmp: Path, suffix: str, tree: Path
) -> list[tuple[str, list[str], dict]]:
    state = tmp / f"state-{stream.stem}"
    url = f"file:{stream}?format=uc8&rate=2.4e6"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    where = {"cwd": tree, "env": env}
    return [
        (f"agent demod{suffix}", [*AGENT, "demod", "--rate", "2.4e6", str(stream)], where),
        (
            f"agent run (GA){suffix}",
            [
                *AGENT,
                "run",
                "--source",
                url,
                "--mqtt",
                broker.url,
                "--site",
                "bench",
                "--state-dir",
                str(state),
                "--status-file",
                str(tmp / "status.json"),
                "--site-lat",
                site[0],
                "--site-lon",
                site[1],
            ],
            where,
        ),
    ]


def measure_stream(
    label: str,
    stream: Path,
    iq_s: float,
    site: tuple[str, str],
    broker: BenchBroker,
    tmp: Path,
    rounds: int,
) -> dict[str, Measured]:
    best: dict[str, Measured] = {}
    for _ in range(rounds):
        for name, cmd, extra in runs_for(stream, site, broker, tmp):
            extra = dict(extra)
            stdin = extra.pop("stdin", None)
            shutil.rmtree(tmp / f"state-{stream.stem}", ignore_errors=True)
            m = measure(name, cmd, stdin=stdin, **extra)
            if m.rc != 0:
                print(f"  {label}: {name} exited {m.rc}", flush=True)
            if name not in best or m.cpu_s < best[name].cpu_s:
                best[name] = m
    print(f"\n{label}: {stream.name}, {iq_s:.1f} s of IQ")
    print(f"  {'program':<24}{'CPU s':>8}{'wall s':>8}{'CPU s/IQ s':>12}{'peak RSS MiB':>14}")
    floor = _self_rss_mib()
    for m in best.values():
        # A child's ru_maxrss starts from this process's at exec: at the floor, it is
        # at most that.
        rss = f"<= {floor:.1f}" if m.peak_rss_mib <= floor + 0.05 else f"{m.peak_rss_mib:.1f}"
        print(f"  {m.name:<24}{m.cpu_s:>8.2f}{m.wall_s:>8.2f}{m.per_iq_s(iq_s):>12.4f}{rss:>14}")
    full, raw = best["dump1090 full"], best["dump1090 --raw"]
    for suffix in AGENT_TREES:
        demod, run = best[f"agent demod{suffix}"], best[f"agent run (GA){suffix}"]
        run_ratio = run.cpu_s / full.cpu_s
        demod_ratio = demod.cpu_s / raw.cpu_s
        print(
            f"  run{suffix} / dump1090 full {run_ratio:5.2f}x  (target <= {MAX_RUN_VS_DUMP1090}x"
            f"{' on the busy stream' if label == 'busy' else ''})"
        )
        print(
            f"  demod{suffix} / dump1090 --raw {demod_ratio:5.2f}x  (target <= {MAX_DEMOD_VS_RAW}x)"
        )
        rss = run.peak_rss_mib
        print(f"  run{suffix} peak RSS {rss:.1f} MiB  (target <= {MAX_RUN_RSS_MIB:.0f} MiB)")
    return best


def startup(stream: Path, tmp: Path) -> None:
    print("\nstart-up")
    cfg = tmp / "check.toml"
    cfg.write_text('sources = []\n[site]\nname = "bench"\n')
    for label, argv in (("--help", ["--help"]), ("check", ["check", "--config", str(cfg)])):
        m = measure(f"adsb-agent {label}", [*AGENT, *argv], cwd=REPO)
        probe = subprocess.run(
            [sys.executable, "-c", _NUMPY_AFTER, *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        numpy = probe.stdout.strip().splitlines()[-1:] or ["?"]
        print(
            f"  adsb-agent {label:<7} wall {m.wall_s:.2f} s, CPU {m.cpu_s:.2f} s, "
            f"peak RSS {m.peak_rss_mib:.1f} MiB, numpy imported: {numpy[0]}"
        )
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [*AGENT, "demod", "--rate", "2.4e6", str(stream)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    first = time.monotonic() - t0
    proc.kill()
    proc.wait()
    print(f"  adsb-agent demod: first frame after {first:.2f} s (target < {MAX_FIRST_FRAME_S} s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat-busy", type=int, default=300, help="copies of modes1_2400.uc8")
    ap.add_argument("--quiet-s", type=float, default=53.0, help="seconds of the quiet stream")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each; least CPU counts")
    ap.add_argument("--keep", type=Path, help="keep/reuse the streams in this directory")
    ap.add_argument("--only", choices=("busy", "quiet"), help="one stream only")
    ap.add_argument("--baseline", type=Path, help="another checkout to run beside this one")
    args = ap.parse_args()
    if args.baseline:
        AGENT_TREES[" [base]"] = args.baseline.resolve()
    if not (shutil.which(DUMP1090) or Path(f"/usr/bin/{DUMP1090}").exists()):
        sys.exit(f"{DUMP1090} is not installed")
    for tree in AGENT_TREES.values():
        byte_compile(tree)
    tmp = Path(tempfile.mkdtemp(prefix="adsb-footprint-"))
    where = args.keep or tmp
    where.mkdir(parents=True, exist_ok=True)
    broker = BenchBroker()
    try:
        busy = where / f"busy-{args.repeat_busy}.uc8"
        quiet = where / f"quiet-{args.quiet_s:g}.uc8"
        if not busy.exists():
            make_busy(busy, args.repeat_busy)
        if args.only != "busy" and not quiet.exists():
            make_quiet(quiet, args.quiet_s)
        print(
            f"bench process peak RSS (the floor under each child's): "
            f"{_self_rss_mib():.1f} MiB; rounds: {args.rounds}, least CPU counts"
        )
        if args.only != "quiet":
            measure_stream(
                "busy", busy, busy.stat().st_size / 2 / RATE, BUSY_SITE, broker, tmp, args.rounds
            )
        if args.only != "busy":
            measure_stream(
                "quiet",
                quiet,
                quiet.stat().st_size / 2 / RATE,
                QUIET_SITE,
                broker,
                tmp,
                args.rounds,
            )
        startup(busy, tmp)
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _self_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
