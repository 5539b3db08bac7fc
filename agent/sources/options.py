"""Option types more than one source kind uses: sample rate, 0/1 flags, demodulator settings.

Each raises ValueError with the words a technician needs ("expected 0 or 1"); the
kind's parser (kind.parse_options) puts the URL and the key in front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from agent.demod import DemodOptions
from agent.errors import SourceError
from agent.settings import Rule
from agent.sources.kind import SourceOptions
from agent.verify import FrameVerifier, SourceGate

if TYPE_CHECKING:
    from agent.demod import Demodulator

IQ_RATES = (2.0e6, 2.4e6)
_TRUE = ("1", "true", "on")
_FALSE = ("0", "false", "off")


def rate_value(text: str) -> float:
    """Sample rate from '2.4e6', '2400000', '2.4M' or '2.4' (MS/s); ValueError says why not."""
    t, scale = text.strip().lower(), 1.0
    if t.endswith("m"):
        t, scale = t[:-1], 1e6
    try:
        rate = float(t) * scale
    except ValueError:
        raise ValueError("not a number") from None
    if rate < 100:  # '2.4' meaning MS/s
        rate *= 1e6
    if rate not in IQ_RATES:
        raise ValueError("supported are 2.0e6 and 2.4e6")
    return rate


def parse_rate(text: str) -> float:
    """rate_value for the command line: SourceError naming the sample rate."""
    try:
        return rate_value(text)
    except ValueError as err:
        sep = " is" if str(err) == "not a number" else ":"
        raise SourceError(f"sample rate {text!r}{sep} {err}") from None


def _rate(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = repr(float(value))
    if not isinstance(value, str):
        raise ValueError("expected 2.0e6 or 2.4e6")
    return rate_value(value)


def _repair(value: Any) -> int:
    text = str(value).strip()
    if text not in ("1", "2", "3"):
        raise ValueError("expected 1, 2 or 3 (bits per frame)")
    return int(text)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _TRUE + _FALSE:
        raise ValueError("expected 0 or 1")
    return text in _TRUE


# 2.0e6 or 2.4e6 samples per second ('2.4e6', '2400000', '2.4M' or '2.4').
Rate = Annotated[float, Rule(parse=_rate)]
# 0/1 (also true/false, on/off).
Flag = Annotated[bool, Rule(parse=_flag)]
# Bits the demodulator may repair in one frame.
RepairBits = Annotated[int, Rule(parse=_repair)]


class IqOptions(SourceOptions):
    """What every IQ input takes: its sample rate and the demodulator's settings.

    Attributes:
        rate: samples per second.
        repair: most bits the demodulator repairs in one frame (1, 2 or 3).
        retry: decide weak replies again with the trellis (see Demodulator).
    """

    rate: Rate = 2.4e6
    repair: RepairBits = DemodOptions.repair_bits
    retry: Flag = False

    @property
    def demod(self) -> DemodOptions:
        return DemodOptions(repair_bits=self.repair, retry_weak=self.retry)


def iq_demodulator(
    rate: float,
    name: str,
    demod: DemodOptions | None = None,
    verifier: FrameVerifier | None = None,
    start_time: float = 0.0,
) -> Demodulator:
    """An IQ source's Demodulator, judging through `verifier` (the pipeline's) when given.

    With a verifier, the demodulator's frames carry their verdicts (Frame.accepted,
    through a SourceGate over it); without, it has a private verifier and its frames
    are judged again by whoever takes them.

    Raises:
        SourceError: an unsupported rate or repair setting.
    """
    from agent.demod import Demodulator  # numpy: only when an IQ source opens

    opts = demod or DemodOptions()
    gate = SourceGate(verifier) if verifier is not None else None
    try:
        return Demodulator(
            rate,
            verifier=gate,  # type: ignore[arg-type]  # the calls a Demodulator makes
            source=name,
            start_time=start_time,
            repair_bits=opts.repair_bits,
            retry_weak=opts.retry_weak,
        )
    except ValueError as err:
        raise SourceError(str(err)) from None
