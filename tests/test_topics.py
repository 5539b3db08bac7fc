"""MQTT topics: every kind built by agent.outputs.topics parses back to what it was."""

from __future__ import annotations

import pytest

from agent.config import SiteConfig
from agent.outputs import topics
from agent.outputs.topics import SiteTopics, Topic
from agent.records import event_record, position_record
from agent.schema import EventKind
from tests.helpers import located_aircraft

PREFIXES = ("adsb/v1", "fleet/adsb/v9")  # the default, and one with more levels


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_kind_round_trips(prefix):
    t = SiteTopics(prefix, "strip-01")
    built = {
        t.position("E4A1B2"): Topic("strip-01", topics.POSITION, "E4A1B2"),
        t.positions: Topic("strip-01", topics.POSITIONS),
        t.events: Topic("strip-01", topics.EVENTS),
        t.status: Topic("strip-01", topics.STATUS),
        t.info: Topic("strip-01", topics.INFO),
        t.health: Topic("strip-01", topics.HEALTH),
        t.check: Topic("strip-01", topics.CHECK),
    }
    kinds = {topics.POSITION, topics.POSITIONS, topics.EVENTS, topics.STATUS}
    kinds |= {topics.INFO, topics.HEALTH, topics.CHECK}
    assert {p.kind for p in built.values()} == kinds  # every kind there is
    for topic, expected in built.items():
        assert topic.startswith(f"{prefix}/strip-01/")
        assert topics.parse(topic, prefix) == expected, topic
    assert topics.is_position(t.position("E4A1B2"))
    assert not any(topics.is_position(x) for x in (t.positions, t.events, t.status))


def test_the_documented_topics_are_what_is_built():
    """The README's table: the contract central consumers and ACLs are written against."""
    t = SiteTopics("adsb/v1", "strip-01")
    assert t.position("E4A1B2") == "adsb/v1/strip-01/position/E4A1B2"
    assert [t.positions, t.events, t.status, t.info, t.health] == [
        "adsb/v1/strip-01/positions",
        "adsb/v1/strip-01/events",
        "adsb/v1/strip-01/status",
        "adsb/v1/strip-01/info",
        "adsb/v1/strip-01/health",
    ]
    assert topics.subscription("adsb/v1", "strip-01") == "adsb/v1/strip-01/#"
    assert topics.subscription("adsb/v1", None) == "adsb/v1/+/#"


def test_records_go_to_their_site_and_kind():
    site = SiteConfig(name="strip-02")
    ac = located_aircraft(1)
    position = position_record(ac, site, ("low",))
    event = event_record(EventKind.TRACK_START, ac, site, ac.last_seen)
    for prefix in PREFIXES:
        assert topics.parse(topics.topic_for(position, prefix), prefix) == Topic(
            "strip-02", topics.POSITION, ac.icao
        )
        assert topics.parse(topics.topic_for(event, prefix), prefix) == Topic(
            "strip-02", topics.EVENTS
        )


@pytest.mark.parametrize(
    "topic",
    [
        "other/v1/strip-01/events",  # another prefix
        "adsb/v10/strip-01/events",  # a prefix that only starts the same
        "adsb/v1/strip-01",  # no kind
        "adsb/v1//events",  # no site
        "adsb/v1/strip-01/position",  # a position without an address
        "adsb/v1/strip-01/position/E4A1B2/x",
        "adsb/v1/strip-01/events/x",
        "adsb/v1/strip-01/weather",  # not a kind we publish
    ],
)
def test_anything_else_is_not_ours(topic):
    assert topics.parse(topic, "adsb/v1") is None
