"""The raw feeds as an output: Beast binary, AVR and SBS on TCP ports, readsb's
option names, one server thread for all (agent/outputs/net_server.py).

Beast and AVR are made from the frame tap (`on_frame`: every frame the CRC gate
accepted); SBS needs decoded fields, positions included, which only the pipeline's
decoder has (CPR needs the aircraft's previous frames), so it comes from the second
tap, `on_decoded`, with the decoder's fields for that frame. These feeds carry all
traffic: the GA filter selects what goes to MQTT and stdout, not what goes here,
unless `[net] selected_only` restricts them to the aircraft the filter selected.

`build_net_outputs` is the one place these outputs (and the JSON files) are made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from agent.crc import syndrome
from agent.errors import ConfigError
from agent.outputs.base import Output
from agent.outputs.net_formats import avr_line, beast_frame, sbs_line
from agent.outputs.net_server import Feed, NetServer

if TYPE_CHECKING:
    from agent.config import AgentConfig, NetConfig
    from agent.frame import Frame
    from agent.track import Aircraft

# Formats whose address is in the clear (bytes 1-3); the others overlay it on parity.
_ADDRESS_IN_CLEAR_DFS = frozenset((11, 17, 18))


def frame_address(frame: Frame) -> str:
    """The 24-bit address a frame is from, upper-case hex (the tracker's form)."""
    if frame.df in _ADDRESS_IN_CLEAR_DFS:
        return frame.msg[1:4].hex().upper()
    return f"{syndrome(frame.msg):06X}"


class NetOutput(Output):
    """Beast (`bo_port`), AVR (`ro_port`) and SBS (`sbs_port`) TCP feeds.

    Args:
        cfg: the `[net]` table.
        selected: with `selected_only`, whether an address (upper-case hex) is one the
            pipeline selected; read on the pipeline thread only.
    """

    def __init__(self, cfg: NetConfig, selected: Callable[[str], bool] | None = None):
        self.cfg = cfg
        self.selected = selected if cfg.selected_only else None
        self.server = NetServer(
            cfg.bind_address,
            client_buffer_bytes=cfg.client_buffer_kb * 1024,
            max_clients=cfg.max_clients,
        )
        self.counts: Counter[str] = self.server.counts
        self.beast: Feed | None = None
        self.avr: Feed | None = None
        self.sbs: Feed | None = None
        try:
            for name, port in (("beast", cfg.bo_port), ("avr", cfg.ro_port), ("sbs", cfg.sbs_port)):
                if port:
                    setattr(self, name, self.server.listen(name, port))
        except OSError as err:
            self.server.close()
            option = {"beast": "bo_port", "avr": "ro_port", "sbs": "sbs_port"}[name]
            raise ConfigError(
                [f"net.{option}: cannot listen on {cfg.bind_address}:{port}: {err.strerror}"]
            ) from None

    def start(self) -> NetOutput:
        """Start serving (the ports listen from init on, so a taken port is found first)."""
        self.server.start()
        return self

    def publish(self, record: dict[str, Any]) -> None:
        """Records are not what these feeds carry (frames are)."""

    def on_frame(self, frame: Frame) -> None:
        beast, avr = self.beast, self.avr
        if not ((beast is not None and beast.clients) or (avr is not None and avr.clients)):
            return  # nobody listening: no encoding at all
        if self.selected is not None and not self.selected(frame_address(frame)):
            return
        if beast is not None and beast.clients:
            beast.send(beast_frame(frame))
        if avr is not None and avr.clients:
            avr.send(avr_line(frame, self.cfg.ro_timestamps))

    def on_decoded(self, frame: Frame, fields: dict[str, Any]) -> None:
        sbs = self.sbs
        if sbs is None or not sbs.clients:
            return
        if self.selected is not None and not self.selected(str(fields.get("icao", "")).upper()):
            return
        line = sbs_line(frame, fields)
        if line is not None:
            sbs.send(line)

    def component(self) -> tuple[str, str, str]:
        c = self.counts
        ports = ", ".join(
            f"{feed.name} :{feed.port} {feed.clients} client{'s' if feed.clients != 1 else ''}"
            for feed in self.server.feeds
        )
        totals = (
            f"{c['clients_connected']} connected, {c['clients_dropped_slow']} dropped slow, "
            f"{c['clients_refused_full']} refused"
        )
        if not self.server.alive:
            return "net", "red", f"server stopped ({self.server.failed or 'not running'})"
        colour = "amber" if any(k.endswith("_backlog_dropped") for k in list(c)) else "green"
        return "net", colour, f"{ports}; {totals}"

    def close(self) -> None:
        self.server.close()


def build_net_outputs(
    cfg: AgentConfig,
    *,
    aircraft: Callable[[], Iterable[Aircraft]],
    selected: Callable[[str], bool],
) -> list[Output]:
    """The raw feeds and JSON files `[net]` asks for (none when all are off).

    Args:
        aircraft: returns the tracker's current aircraft; called on the pipeline thread.
        selected: whether an address is selected by the GA filter (for `selected_only`).
    The outputs are made, their ports bound; `start()` each to serve.
    """
    from agent.outputs.json_files import JsonFilesOutput

    net = cfg.net
    outputs: list[Output] = []
    if net.bo_port or net.ro_port or net.sbs_port:
        outputs.append(NetOutput(net, selected))
    if net.json_dir:
        outputs.append(
            JsonFilesOutput(
                net,
                site=cfg.site.position,
                expire_s=cfg.track.expire_s,
                aircraft=aircraft,
                selected=selected,
            )
        )
    return outputs
