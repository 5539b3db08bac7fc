"""Where records and frames leave the agent: one module per output, all peers behind
one interface (`base.Output`: publish, the frame tap `on_frame`, `link_state`, counts,
close).

    base.py       the interface and LinkState
    stdout.py     JSON lines (replay, demo, `run --stdout`)
    mqtt.py       MQTT 5 delivery of the outbox, with delivery.py (what to send next)
    mqtt_link.py  the one place a paho client is built (URL, password, TLS, protocol)
    topics.py     the one place MQTT topics are built and parsed

The MQTT modules are imported by name (`agent.outputs.mqtt`), not from here, so
`replay` and `demo` do not load paho.
"""

from agent.outputs.base import LinkState, Output
from agent.outputs.stdout import StdoutPublisher, to_json

__all__ = ["LinkState", "Output", "StdoutPublisher", "to_json"]
