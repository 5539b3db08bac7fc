"""Known aerodromes (the `airportsdata` package: ~28,000 airports and strips worldwide),
to tell "near a known aerodrome" from "away from any".

Bucketed by whole degree once at start, so a lookup compares a handful of candidates
instead of the world.
"""

from __future__ import annotations

import csv
import math
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources

from agent.geo import haversine_km

# Within this distance an aircraft is "at" an aerodrome (a circuit stays within ~3 km).
NEAR_KM = 5.0


@dataclass(frozen=True, slots=True)
class Aerodrome:
    code: str
    name: str
    lat: float
    lon: float
    elevation_ft: float


class Aerodromes:
    """The table, held compactly: ~28,000 Aerodrome objects (a slotted object, two
    strings and three floats each) took 11 MB of a 64 MB budget on a Pi. Here the
    numbers are three float arrays, codes and names one string, and each one-degree
    cell a chain through an index array, in the order entries were added; an Aerodrome
    is made only for the one a lookup returns.

    `deferred()` builds the table on its first lookup rather than at start.
    """

    def __init__(self, entries: Iterable[Aerodrome] = ()):
        self._pending: Callable[[Aerodromes], None] | None = None  # fills it: deferred()
        self._filling = threading.Lock()  # the page's thread may look up at the same time
        self._lat = array("d")
        self._lon = array("d")
        self._elevation_ft = array("d")
        # "code\x1fname\n" per entry in UTF-8 (a str with one accented name would take
        # 2-4 bytes a character); entry i's is _text[_offsets[i]:_offsets[i + 1]].
        self._text = bytearray()
        self._offsets = array("L", [0])
        self._next = array("l")  # the next entry in the same cell, -1 at its end
        self._first: dict[int, int] = {}  # cell -> its first entry
        self._last: dict[int, int] = {}  # cell -> its last entry (while adding)
        for e in entries:
            self._add(e.code, e.name, e.lat, e.lon, e.elevation_ft)
        self._seal()

    def __len__(self) -> int:
        self._ready()
        return len(self._lat)

    def _ready(self) -> None:
        if self._pending is not None:
            with self._filling:
                if self._pending is not None:
                    self._pending(self)
                    self._pending = None

    def _add(self, code: str, name: str, lat: float, lon: float, elevation_ft: float) -> None:
        i = len(self._lat)
        self._lat.append(lat)
        self._lon.append(lon)
        self._elevation_ft.append(elevation_ft)
        self._text += f"{code}\x1f{name}\n".encode()
        self._offsets.append(len(self._text))
        self._next.append(-1)
        cell = _cell(math.floor(lat), math.floor(lon))
        last = self._last.get(cell)
        if last is None:
            self._first[cell] = i
        else:
            self._next[last] = i
        self._last[cell] = i

    def _seal(self) -> None:
        self._text = bytearray(self._text)  # no spare capacity
        self._last = {}

    @classmethod
    def load(cls) -> Aerodromes:
        """Every aerodrome airportsdata knows, streamed from its CSV: building its dict of
        dicts first would cost ~30 MB of peak memory on a small Pi."""
        table = cls()
        table._fill_from_airportsdata()
        return table

    @classmethod
    def deferred(cls) -> Aerodromes:
        """The table load() builds, built on the first lookup instead. Lookups come
        with events of selected tracks (and the page's map): at a site that hears only
        airliners, never; building it costs ~70 ms of CPU and a few MB at start."""
        table = cls()
        table._pending = cls._fill_from_airportsdata
        return table

    def _fill_from_airportsdata(self) -> None:
        import airportsdata

        path = resources.files(airportsdata) / "airports.csv"
        with path.open(encoding="utf-8") as fh:
            rows = csv.reader(fh)  # lists, not a dict per row: less to allocate and free
            at = {name: i for i, name in enumerate(next(rows))}
            code, name, lat, lon, elevation = (
                at[k] for k in ("icao", "name", "lat", "lon", "elevation")
            )
            add = self._add
            for row in rows:
                if not row[lat] or not row[lon]:
                    continue
                add(
                    row[code],
                    row[name],
                    float(row[lat]),
                    float(row[lon]),
                    float(row[elevation] or 0),
                )
        self._seal()

    def _entry(self, i: int) -> Aerodrome:
        text = self._text[self._offsets[i] : self._offsets[i + 1] - 1].decode()
        code, name = text.split("\x1f")
        return Aerodrome(code, name, self._lat[i], self._lon[i], self._elevation_ft[i])

    def nearest(self, lat: float, lon: float, within_km: float = NEAR_KM) -> Aerodrome | None:
        """The closest aerodrome within `within_km`, or None."""
        self._ready()
        best, best_km = -1, within_km
        for i, km in self._scan(lat, lon, within_km):
            if km <= best_km:
                best, best_km = i, km
        return self._entry(best) if best >= 0 else None

    def within(self, lat: float, lon: float, within_km: float) -> list[tuple[Aerodrome, float]]:
        """Every aerodrome within `within_km` with its distance, nearest first (the map)."""
        self._ready()
        found = sorted(self._scan(lat, lon, within_km), key=lambda hit: hit[1])
        return [(self._entry(i), km) for i, km in found]

    def _scan(self, lat: float, lon: float, within_km: float) -> Iterator[tuple[int, float]]:
        """(entry, km) of each aerodrome within `within_km`, in table order.

        A bounding box in degrees rules out almost every candidate before the
        great-circle distance is computed (Mato Grosso alone has hundreds of strips).
        """
        dlat = within_km / 111.0
        dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
        lats, lons, following = self._lat, self._lon, self._next
        for cla in range(math.floor(lat - dlat), math.floor(lat + dlat) + 1):
            for clo in range(math.floor(lon - dlon), math.floor(lon + dlon) + 1):
                i = self._first.get(_cell(cla, (clo + 180) % 360 - 180), -1)
                while i >= 0:
                    elat, elon = lats[i], lons[i]
                    if abs(elat - lat) <= dlat and abs((elon - lon + 180) % 360 - 180) <= dlon:
                        km = haversine_km(lat, lon, elat, elon)
                        if km <= within_km:
                            yield i, km
                    i = following[i]


def _cell(lat_deg: int, lon_deg: int) -> int:
    """One int per one-degree cell (lat -90..90, lon -180..180)."""
    return (lat_deg + 90) * 361 + (lon_deg + 180)
