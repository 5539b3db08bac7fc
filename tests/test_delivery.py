"""Delivery order after an outage: live first, backlog capped, per-aircraft order kept."""

from __future__ import annotations

from agent.outbox import Outbox
from agent.outputs.delivery import DeliveryQueue


def test_live_flows_while_backlog_drains_at_the_capped_rate(tmp_path):
    ob = Outbox(tmp_path / "o.db")
    for i in range(100):  # backlog built during the outage: aircraft A only
        ob.put("t", {"icao": "AAAAAA", "n": i})
    now = [0.0]
    q = DeliveryQueue(ob, drain_rate=10, clock=lambda: now[0])
    q.reset(())  # link up
    live = [ob.put("t", {"icao": "BBBBBB", "n": i}) for i in range(5)]
    now[0] = 1.0
    first = q.next_rows(room=50)
    seqs = [r.seq for r in first]
    assert seqs[:5] == live  # live aircraft B first
    assert seqs[5:] == list(range(1, 11))  # then 10 backlog rows (1 s at 10/s)
    assert q.next_rows(room=50) == []  # no more tokens this second


def test_aircraft_with_backlog_keeps_its_order(tmp_path):
    ob = Outbox(tmp_path / "o.db")
    for i in range(3):
        ob.put("t", {"icao": "AAAAAA", "n": i})
    now = [0.0]
    q = DeliveryQueue(ob, drain_rate=1, clock=lambda: now[0])
    q.reset(())
    late = ob.put("t", {"icao": "AAAAAA", "n": 3})
    sent = []
    for _ in range(10):
        now[0] += 1.0
        sent += [r.seq for r in q.next_rows(room=10)]
    assert sent == [1, 2, 3, late]


def test_rows_in_flight_at_reconnect_are_not_sent_twice(tmp_path):
    ob = Outbox(tmp_path / "o.db")
    for i in range(6):
        ob.put("t", {"icao": "AAAAAA", "n": i})
    now = [0.0]
    q = DeliveryQueue(ob, drain_rate=1000, clock=lambda: now[0])
    q.reset(in_flight={2, 3})
    now[0] = 5.0
    assert [r.seq for r in q.next_rows(room=100)] == [1, 4, 5, 6]
