"""MQTT topics: the one place they are built and parsed.

Everything a site publishes is under `<prefix>/<site>/` (prefix `mqtt.topic_prefix`,
`adsb/v1` by default; the README's "Topics and payloads" table is the contract):

    position/<ICAO>   one position record          positions   a zlib batch of them
    events            one event record             status      online/stopped/offline
    info              agent and receiver (JSON)    health      rates, link, counters
    check             `adsb-agent check`'s probe (no consumer listens)

A broker ACL confines a site to `<prefix>/<site>/#`, so the site level is always the
first after the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POSITION = "position"
POSITIONS = "positions"
EVENTS = "events"
STATUS = "status"
INFO = "info"
HEALTH = "health"
CHECK = "check"
# Kinds that are one topic level (position carries the address as a second).
_SINGLE = frozenset({POSITIONS, EVENTS, STATUS, INFO, HEALTH, CHECK})


@dataclass(frozen=True)
class Topic:
    """A parsed topic: the site it belongs to, its kind and, for a position, the address."""

    site: str
    kind: str
    icao: str | None = None


class SiteTopics:
    """The topics of one site under one prefix (what a publisher needs)."""

    def __init__(self, prefix: str, site: str):
        self.base = f"{prefix}/{site}"
        self.positions = f"{self.base}/{POSITIONS}"
        self.events = f"{self.base}/{EVENTS}"
        self.status = f"{self.base}/{STATUS}"
        self.info = f"{self.base}/{INFO}"
        self.health = f"{self.base}/{HEALTH}"
        self.check = f"{self.base}/{CHECK}"

    def position(self, icao: str) -> str:
        return f"{self.base}/{POSITION}/{icao}"


def topic_for(record: dict[str, Any], prefix: str) -> str:
    """Topic of a record (agent.records): positions per aircraft, events on one topic."""
    topics = SiteTopics(prefix, record["site"])
    if record["type"] == "position":
        return topics.position(record["icao"])
    return topics.events


def subscription(prefix: str, site: str | None) -> str:
    """The filter for everything one site publishes, or every site's (`site` None)."""
    return f"{prefix}/{site or '+'}/#"


def parse(topic: str, prefix: str) -> Topic | None:
    """The site, kind and address of one of our topics; None for anything else."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) < 2 or not parts[0]:
        return None
    site, kind = parts[0], parts[1]
    if kind == POSITION and len(parts) == 3 and parts[2]:
        return Topic(site, POSITION, parts[2])
    if kind in _SINGLE and len(parts) == 2:
        return Topic(site, kind)
    return None


def is_position(topic: str) -> bool:
    """A single position's topic (what batching gathers); cheap, for every row sent."""
    return f"/{POSITION}/" in topic
