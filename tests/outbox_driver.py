"""A process that commits records and publishes them, for the kill -9 test.

Usage: python -m tests.outbox_driver STATE_DIR MQTT_URL COUNT
Prints `committed SEQ ID` after each commit (flushed), so the test knows exactly what
was committed before it killed the process. Each record carries a unique `id`.
"""

from __future__ import annotations

import sys
import time
import uuid

from agent.config import MqttConfig
from agent.outbox import Outbox
from agent.outputs.mqtt import MqttPublisher


def main() -> None:
    state, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pub = MqttPublisher(MqttConfig(url=url), "site-k", Outbox(f"{state}/outbox.sqlite")).start()
    for i in range(count):
        rid = uuid.uuid4().hex
        seq = pub.publish(
            {"type": "position", "site": "site-k", "icao": f"E4{i % 50:04X}", "id": rid}
        )
        print(f"committed {seq} {rid}", flush=True)
        time.sleep(0.002)
    pub.flush(30)
    pub.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
