"""A live RTL-SDR dongle through pyrtlsdr: 1090 MHz UC8 samples into the demodulator.

    rtlsdr://[serial-or-index]?rate=2.4e6&gain=auto|adaptive|DB&ppm=N&biastee=0|1

Threads: librtlsdr's asynchronous reader runs in a thread of its own (`SdrReader`) and
calls back with a buffer it reuses, so each buffer is copied into a bounded queue; the
thread iterating `batches()` (the pipeline's own, when the dongle is the only source)
takes buffers from the queue and demodulates them. When the consumer falls behind, new
buffers are dropped and counted (`buffers_dropped`, `samples_dropped`): the reader
never blocks, so librtlsdr never overruns silently inside libusb, and the loss is
visible in the counters.

Unplugging: the async reader simply returns (librtlsdr sees its USB transfers fail and
stops), sync calls raise LibUSBError (an OSError). Either way the device is closed and
reopened with backoff (reopen.Reopener) until it is back, without restarting the process;
a device chosen by serial number is looked up again on every open, so a dongle moved to
another USB port is found. A reader that delivers nothing for `stall_s` is treated as
wedged and reopened too (dump1090 exits in that case; a reopen usually suffices).

Receive times: the demodulator counts samples from a start time; that start is anchored
on the wall clock when the first buffer arrives and re-anchored (`clock_resync`) when the
sample count and the clock disagree by more than MAX_SKEW_S (dropped buffers, a reopen,
crystal drift). Frame times never go backwards.

librtlsdr: pyrtlsdr 0.4+ binds functions Debian's librtlsdr 0.6 lacks (AttributeError at
import); pyrtlsdrlib ships a build pyrtlsdr loads first. `load_pyrtlsdr` turns every
loading failure into one SourceError saying what to install. ADSB_AGENT_LIBRTLSDR names a
specific librtlsdr file to use instead (e.g. the RTL-SDR Blog fork for V4 dongles; the
tests point it at their fake library).
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import queue
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Generator, Iterator
from itertools import chain
from typing import Any
from urllib.parse import SplitResult, unquote

from agent.errors import SourceError
from agent.frame import Frame
from agent.sources.gain import AdaptiveGain, GainStep
from agent.sources.kind import OpenContext, SourceKind
from agent.sources.live_iq import LiveIq
from agent.sources.reopen import Reopener
from agent.sources.stream import Clock
from agent.sources.tuner import ADSB_FREQ_HZ, TunerOptions
from agent.verify import FrameVerifier

log = logging.getLogger("agent.sources.rtlsdr")

ENV_LIBRTLSDR = "ADSB_AGENT_LIBRTLSDR"
INSTALL_HINT = (
    "install the RTL-SDR extra: pip install 'adsb-agent[rtlsdr]' (pyrtlsdr with "
    "pyrtlsdrlib's librtlsdr, x86-64 and aarch64); elsewhere (32-bit ARM): "
    "apt-get install librtlsdr0 and pip install 'pyrtlsdr>=0.3,<0.4' "
    "(pyrtlsdr 0.4+ needs functions Debian's librtlsdr 0.6 lacks)"
)
# librtlsdr's own default transfer size (16 x 32 x 512 bytes): 54.6 ms at 2.4 MS/s.
DEFAULT_BUF_BYTES = 262_144
# Buffers queued between reader and demodulator: 32 x 54.6 ms = 1.7 s, 8 MiB.
DEFAULT_QUEUE_BUFFERS = 32
# A reader silent this long is wedged (a dongle streams continuously).
DEFAULT_STALL_S = 5.0
# How long the consumer waits for a buffer before looking at `stop` again.
POLL_S = 0.25
# How long a cancelled reader may take to return before it is declared stuck.
JOIN_S = 5.0
# librtlsdr_open error codes worth a hint (libusb: -3 access denied, -6 busy).
_OPEN_HINTS = {
    -3: "permission denied: add a udev rule (idVendor 0bda, idProduct 2838) for plugdev",
    -6: "device busy: the DVB driver holds it (blacklist dvb_usb_rtl28xxu) or another "
    "program (rtl_tcp, dump1090) has it open",
}
# What to check when no dongle is seen at all.
_NOT_FOUND_HINT = (
    "is it plugged in? `lsusb` should list 0bda:2838 (or 0bda:2832); try another USB "
    "port or cable, and a powered hub if the board's power is weak"
)


class OpenFailed(OSError):
    """Opening the dongle failed; the message says why in a technician's words."""


_loaded: types.ModuleType | None = None


def load_pyrtlsdr() -> types.ModuleType:
    """Import pyrtlsdr (once) bound to a working librtlsdr; SourceError says what to install.

    With ADSB_AGENT_LIBRTLSDR set, that file is loaded and handed to pyrtlsdr through
    its pyrtlsdrlib hook (pyrtlsdr asks `pyrtlsdrlib.load_librtlsdr()` first), so no
    other librtlsdr on the machine can be picked by accident.

    Raises:
        SourceError: pyrtlsdr missing, no librtlsdr, or a librtlsdr too old for it.
    """
    global _loaded
    if _loaded is not None:
        return _loaded
    path = os.environ.get(ENV_LIBRTLSDR)
    try:
        if path:
            dll = ctypes.CDLL(path)
            shim = types.ModuleType("pyrtlsdrlib")
            shim.load_librtlsdr = lambda: dll  # type: ignore[attr-defined]
            saved = sys.modules.get("pyrtlsdrlib")
            sys.modules["pyrtlsdrlib"] = shim
            try:
                import rtlsdr
            finally:
                if saved is None:
                    del sys.modules["pyrtlsdrlib"]
                else:
                    sys.modules["pyrtlsdrlib"] = saved
            if getattr(rtlsdr.librtlsdr, "_name", path) != path:
                log.warning("pyrtlsdr was already bound to %s; %s ignored", rtlsdr, path)
        else:
            import rtlsdr
    except ImportError as err:
        what = "pyrtlsdr is not installed" if err.name == "rtlsdr" else f"no librtlsdr ({err})"
        raise SourceError(f"cannot load the RTL-SDR driver: {what}; {INSTALL_HINT}") from None
    except AttributeError as err:
        raise SourceError(
            f"cannot load the RTL-SDR driver: the librtlsdr found is too old for this "
            f"pyrtlsdr ({err}); {INSTALL_HINT}"
        ) from None
    except OSError as err:
        raise SourceError(f"cannot load the RTL-SDR driver: {err}; {INSTALL_HINT}") from None
    _loaded = rtlsdr
    return rtlsdr


def snap_gain(gain_db: float, gains_db: list[float]) -> float:
    """The tuner gain nearest to `gain_db` (pyrtlsdr snaps the same way)."""
    return min(gains_db, key=lambda g: abs(g - gain_db))


@dataclasses.dataclass(slots=True)
class _Session:
    """One open device and its reader thread."""

    sdr: Any
    buffers: queue.Queue[tuple[bytes, float, int]]  # data, arrival, samples lost before
    done: threading.Event
    thread: threading.Thread | None = None
    end_reason: str = "the async reader returned (device unplugged?)"


class RtlSdrSource:
    """A Source over a local RTL-SDR dongle; reopens it until `stop` is set.

    Counters (in `counts`, shared with the demodulator's): buffers, buffers_dropped,
    samples_dropped (queue full: consumer too slow), samples, opens, open_failed,
    device_lost, stalls (no buffer for stall_s), gain_changes, clock_resync, plus the
    demodulator's (preambles, accepted_df17, ...). `buffers` and the two drop counters are
    written by the reader thread only, the rest by the consuming thread.

    Args:
        device: serial number (str) or index (int); None is index 0.
        options: rate, gain, ppm, bias-tee.
        name: source name on frames and logs (default 'rtlsdr://device').
        buf_bytes: bytes per async transfer (a multiple of 512).
        queue_buffers: buffers held between reader and demodulator.
        stall_s: reopen when no buffer arrived for this long.
        backoff_min, backoff_max: reopen backoff (reopen.Reopener).
        clock: wall clock for receive times.
        verifier: the pipeline's verifier (see LiveIq).
    Raises:
        SourceError: bad settings, or pyrtlsdr/librtlsdr cannot be loaded (at once,
            not later in a thread).
    """

    def __init__(
        self,
        device: str | int | None = None,
        options: TunerOptions | None = None,
        *,
        name: str | None = None,
        buf_bytes: int = DEFAULT_BUF_BYTES,
        queue_buffers: int = DEFAULT_QUEUE_BUFFERS,
        stall_s: float = DEFAULT_STALL_S,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
        clock: Clock = time.time,
        verifier: FrameVerifier | None = None,
    ):
        if buf_bytes < 512 or buf_bytes % 512:
            raise SourceError("buf_bytes must be a positive multiple of 512")
        if queue_buffers < 1:
            raise SourceError("queue_buffers must be >= 1")
        self.device = 0 if device is None else device
        self.options = options or TunerOptions()
        self.name = name or f"rtlsdr://{self.device}"
        self.buf_bytes = buf_bytes
        self.queue_buffers = queue_buffers
        self.stall_s = stall_s
        self.backoff = (backoff_min, backoff_max)
        self.clock = clock
        self._rtlsdr = load_pyrtlsdr()
        self.live = LiveIq(
            self.options.rate, self.name, clock, demod=self.options.demod, verifier=verifier
        )
        self.counts: Counter[str] = self.live.counts
        # The gain the device is at (dB), or "auto"; kept across reopens.
        self.gain_db: float | None = None

    @property
    def noise_floor_dbfs(self) -> float | None:
        """The demodulator's noise floor (dBFS), None before the first block."""
        return self.live.demod.noise_floor_dbfs

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Frames from the dongle, reopening it as needed; returns only when `stop` is set."""
        return chain.from_iterable(self.batches(stop))

    def batches(self, stop: threading.Event) -> Iterator[list[Frame]]:
        """The frames of each buffer taken (Source.batches): an empty batch when a buffer
        brought none, and every POLL_S while none comes or the device is reopened."""
        reopen = Reopener(self.name, stop, log, self.counts, self.backoff)
        while not stop.is_set():
            try:
                sdr, detail = self._open()
            except OSError as err:
                if not reopen.open_failed(_describe(err), wait=False):
                    return
                if not (yield from _pause(reopen.pause_s, stop)):
                    return
                continue
            reopen.opened(detail)
            self.live.restart()
            before = self.counts["buffers"]
            reason = yield from self._stream(sdr, stop)
            if reason is None:
                return
            yield self.live.drain()
            if not reopen.lost(reason, delivered=self.counts["buffers"] > before, wait=False):
                return
            if not (yield from _pause(reopen.pause_s, stop)):
                return

    def _open(self) -> tuple[Any, str]:
        """Open and configure the device; OSError (LibUSBError) when it is not usable."""
        rtl = self._rtlsdr.RtlSdr
        if isinstance(self.device, str):
            try:
                index = rtl.get_device_index_by_serial(self.device)
            except OSError as err:
                raise OpenFailed(_serial_not_found(rtl, self.device, err)) from err
        else:
            index = self.device
        try:
            sdr = rtl(device_index=index)
        except OSError as err:
            raise OpenFailed(_open_refused(rtl, index, err)) from err
        try:
            o = self.options
            sdr.sample_rate = o.rate
            sdr.center_freq = ADSB_FREQ_HZ
            if o.ppm:  # librtlsdr refuses (-2) a correction equal to the current one
                sdr.freq_correction = o.ppm
            gains = list(sdr.valid_gains_db)
            gain_text = self._apply_initial_gain(sdr, gains)
            if o.biastee is not None:
                sdr.set_bias_tee(o.biastee)
        except BaseException:
            sdr.close()
            raise
        detail = f"index {index}, {o.rate / 1e6:g} MS/s, gain {gain_text}, ppm {o.ppm}" + (
            "" if o.biastee is None else f", bias-tee {'on' if o.biastee else 'off'}"
        )
        return sdr, detail

    def _apply_initial_gain(self, sdr: Any, gains: list[float]) -> str:
        gain = self.options.gain
        if gain == "auto" or not gains:
            sdr.gain = "auto"
            self.gain_db = None
            return "auto (tuner AGC)"
        if gain == "adaptive":
            if self.live.gain is None:
                self.live.gain = AdaptiveGain(gains)
            self.gain_db = self.live.gain.gain_db
            sdr.gain = self.gain_db
            return f"adaptive, starting at {self.gain_db:g} dB"
        self.gain_db = snap_gain(float(gain), gains)
        sdr.gain = self.gain_db
        asked = "" if self.gain_db == gain else f" (asked {float(gain):g})"
        return f"{self.gain_db:g} dB{asked}"

    def _stream(self, sdr: Any, stop: threading.Event) -> Generator[list[Frame], None, str | None]:
        """Batches from one open device; returns why it ended, None when `stop` was set."""
        session = _Session(sdr, queue.Queue(maxsize=self.queue_buffers), threading.Event())
        session.thread = threading.Thread(
            target=self._read, args=(session, stop), name="SdrReader", daemon=True
        )
        session.thread.start()
        last_buffer = time.monotonic()
        reason: str | None = None
        try:
            while True:
                try:
                    data, arrival, dropped = session.buffers.get(timeout=POLL_S)
                except queue.Empty:
                    if stop.is_set():
                        return None
                    yield []  # awake, nothing arrived: the pipeline may tick
                    if session.done.is_set():
                        reason = session.end_reason
                        return reason
                    if time.monotonic() - last_buffer > self.stall_s:
                        self.counts["stalls"] += 1
                        reason = f"no samples for {self.stall_s:g} s (wedged?)"
                        return reason
                    continue
                last_buffer = time.monotonic()
                frames, step = self.live.feed(data, arrival, dropped)
                if step is not None:
                    self._set_gain(sdr, step)
                yield frames
                if stop.is_set():
                    return None
        finally:
            self._end(session, stopping=reason is None)

    def _read(self, session: _Session, stop: threading.Event) -> None:
        """SdrReader thread: librtlsdr's async loop, copying each buffer into the queue."""
        counts = self.counts
        put = session.buffers.put_nowait
        sdr = session.sdr
        lost = [0]  # samples dropped since the last buffer queued: it carries the count

        def on_buffer(buf: Any, _context: object) -> None:
            counts["buffers"] += 1
            if stop.is_set():  # shutting down: the rest is not wanted, not lost
                _cancel(sdr)
                return
            try:
                put((bytes(buf), self.clock(), lost[0]))  # copy: librtlsdr reuses the buffer
                lost[0] = 0
            except queue.Full:
                counts["buffers_dropped"] += 1
                counts["samples_dropped"] += len(buf) // 2
                lost[0] += len(buf) // 2

        try:
            sdr.read_bytes_async(on_buffer, num_bytes=self.buf_bytes)
        except OSError as err:
            session.end_reason = f"async read failed: {_describe(err)}"
        except Exception as err:  # the reader must always report its end
            session.end_reason = f"async read failed: {err!r}"
        finally:
            session.done.set()

    def _set_gain(self, sdr: Any, step: GainStep) -> None:
        try:
            sdr.gain = step.gain_db
        except OSError as err:  # the device is going away; the reader will notice
            log.debug("%s: cannot set gain: %s", self.name, _describe(err))
            return
        self.gain_db = step.gain_db
        self.counts["gain_changes"] += 1
        log.info("%s: gain %g dB (%s)", self.name, step.gain_db, step.reason)

    def _end(self, session: _Session, *, stopping: bool) -> None:
        """Stop the reader, wait for it, close the device (also on generator close)."""
        thread = session.thread
        if thread is not None and thread.is_alive():
            _cancel(session.sdr)
            thread.join(JOIN_S)
            if thread.is_alive():
                raise SourceError(
                    f"{self.name}: the USB reader did not stop within {JOIN_S:g} s; "
                    "giving up so that the service manager restarts the agent"
                )
        try:
            session.sdr.close()
        except OSError as err:
            log.debug("%s: close: %s", self.name, _describe(err))
        if stopping:
            log.info("%s: closed", self.name)


def _pause(seconds: float, stop: threading.Event) -> Generator[list[Frame], None, bool]:
    """Wait `seconds` (a reopen's backoff) giving an empty batch every POLL_S, so that
    the pipeline iterating the source still ends silent tracks while the dongle is away.
    False when `stop` was set."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if stop.wait(min(left, POLL_S)):
            return False
        yield []
    return not stop.is_set()


def _cancel(sdr: Any) -> None:
    try:
        sdr.cancel_read_async()
    except OSError:  # not running any more (unplugged): nothing to cancel
        pass


def _serials(rtl: Any) -> list[str]:
    """Serial numbers of the dongles librtlsdr sees (empty if it cannot tell)."""
    try:
        return list(rtl.get_device_serial_addresses())
    except (OSError, ValueError):
        return []


def _code(err: OSError) -> str:
    code = getattr(err, "errno", None)
    return f"librtlsdr code {code}" if isinstance(code, int) else str(err)


def _serial_not_found(rtl: Any, serial: str, err: OSError) -> str:
    """Why the dongle with serial `serial` cannot be found (librtlsdr: -2 none at all,
    -3 none with that serial), in words."""
    found = _serials(rtl)
    if not found:
        return (
            f"no RTL-SDR dongle found (looking for serial {serial}): {_NOT_FOUND_HINT} "
            f"({_code(err)})"
        )
    return (
        f"no RTL-SDR dongle with serial {serial}; found {', '.join(found)} "
        f"(set the serial in the source URL, or give one with rtl_eeprom -s) ({_code(err)})"
    )


def _open_refused(rtl: Any, index: int | None, err: OSError) -> str:
    """Why librtlsdr could not open dongle `index` (None: the first), in words."""
    code = getattr(err, "errno", None)
    hint = _OPEN_HINTS.get(code) if isinstance(code, int) else None
    if hint is not None:
        return f"{hint} ({_code(err)})"
    found = _serials(rtl)
    if not found:
        return f"no RTL-SDR dongle found: {_NOT_FOUND_HINT} ({_code(err)})"
    if index is not None and index >= len(found):
        return (
            f"no RTL-SDR dongle at index {index}: {len(found)} found (serials "
            f"{', '.join(found)}; name one in the URL: rtlsdr://<serial>) ({_code(err)})"
        )
    if code == -4:
        return f"the dongle went away while opening (unplugged, or short of power) ({_code(err)})"
    return f"the dongle is there but does not open: {err} (replug it; check dmesg)"


def _describe(err: OSError) -> str:
    """A LibUSBError or OSError as one line, with a hint for the usual field problems."""
    if isinstance(err, OpenFailed):
        return str(err)
    code = getattr(err, "errno", None)
    hint = _OPEN_HINTS.get(code) if isinstance(code, int) else None
    text = str(err) or type(err).__name__
    return f"{text} ({hint})" if hint else text


def parse_device(netloc: str) -> str | int | None:
    """Device from the URL host part: '' -> None (index 0), 1-2 digits -> index, else serial.

    Serial numbers are often all digits ('00000001' is the factory default), so only a
    short number is an index; set distinct serials with rtl_eeprom -s and use those:
    an index changes when dongles are replugged in another order, a serial does not.
    """
    if not netloc:
        return None
    if netloc.isdigit() and len(netloc) <= 2:
        return int(netloc)
    return netloc


class RtlSdrOptions(TunerOptions):
    """rtlsdr:// options: the tuner's, and which dongle (the URL's host part)."""

    device: str | int | None = None


def _locate(url: str, parts: SplitResult) -> dict[str, Any]:
    return {"device": parse_device(unquote(parts.netloc))}


def _open(url: str, options: RtlSdrOptions, context: OpenContext) -> RtlSdrSource:
    # A live input: receive times come from the wall clock, start_time does not apply.
    return RtlSdrSource(options.device, options, name=url, verifier=context.verifier)


KIND = SourceKind(
    scheme="rtlsdr",
    prefix="rtlsdr://",
    usage="rtlsdr://[serial-or-index]?rate=2.4e6&gain=auto|adaptive|DB&ppm=N&biastee=0|1",
    options=RtlSdrOptions,
    locate=_locate,
    open=_open,
    cannot_open_fix=(
        "only one program can open a device: `sudo systemctl stop adsb-agent` first; "
        "then `dmesg` for USB errors (firmware_notes/dongle.md)"
    ),
    no_data_fix="check the dongle's cable and power; `rtl_test -t` should find it",
)
