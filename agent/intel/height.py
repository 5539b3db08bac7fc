"""Height above ground, with where it came from and how far to trust it.

Barometric altitude in ADS-B is pressure altitude (1013.25 hPa): off by about 30 ft
per hPa of QNH difference, hundreds of feet on a stormy day. GNSS altitude is height
above the WGS84 ellipsoid, off from mean sea level by the geoid undulation at the site
(-105..+85 m worldwide; set `site.geoid_m` from a geoid table for your site).

Best source first: the aircraft's own GNSS height; else barometric altitude corrected
with the configured QNH; else corrected with the offset estimated from other aircraft
that send both altitudes (the median of their GNSS-minus-baro, which absorbs QNH and
temperature); else raw pressure altitude with a wide uncertainty.

A height is never below the ground: pressure altitude on a high-pressure day, a
site elevation a little off or an unset geoid put an aircraft on short final tens of
feet "under" the runway. Such a figure is published as 0 (on the ground or just
above it) with its uncertainty unchanged, so a consumer still sees how far to trust it.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from agent.intel.terrain import Terrain
from agent.schema import AglSource, GroundSource

M_TO_FT = 3.28084
FT_PER_HPA = 27.3  # pressure-altitude slope near the ground (ISA)
# Uncertainties (1 sigma-ish, ft) by source, for consumers weighing the figure.
_UNCERTAINTY_FT: dict[AglSource, float] = {
    "gnss": 50.0,
    "baro_qnh": 60.0,
    "baro_traffic": 80.0,
    "baro_std": 600.0,
}
# Aircraft below this pressure altitude inform the QNH estimate (near-ground air).
QNH_SAMPLE_CEILING_FT = 10_000
# Samples kept for the estimate, and how many are needed before it is used.
QNH_WINDOW = 200
QNH_MIN_SAMPLES = 5
# Heights remembered by their inputs; beyond this many the memory starts afresh.
_MEMO_MAX = 4096
_MISS = object()


@dataclass(frozen=True, slots=True)
class Height:
    agl_ft: float
    source: AglSource
    uncertainty_ft: float
    ground: GroundSource


class QnhEstimator:
    """Running estimate of (GNSS MSL height - pressure altitude) from the traffic."""

    def __init__(self, geoid_m: float = 0.0):
        self.geoid_ft = geoid_m * M_TO_FT
        self._samples: deque[float] = deque(maxlen=QNH_WINDOW)
        self._offset: float | None = None
        # Counts the samples ever added: heights computed before another may be stale.
        self.revision = 0

    def add(self, alt_baro_ft: int | None, alt_gnss_ft: int | None) -> None:
        if alt_baro_ft is None or alt_gnss_ft is None or alt_baro_ft > QNH_SAMPLE_CEILING_FT:
            return
        self._samples.append(alt_gnss_ft - self.geoid_ft - alt_baro_ft)
        self._offset = None
        self.revision += 1

    @property
    def offset_ft(self) -> float | None:
        """Feet to add to pressure altitude to get MSL height, once enough samples."""
        if len(self._samples) < QNH_MIN_SAMPLES:
            return None
        if self._offset is None:
            self._offset = statistics.median(self._samples)
        return self._offset

    @property
    def samples(self) -> int:
        return len(self._samples)


class HeightModel:
    """Computes AGL for an aircraft from its altitudes and position.

    Asked on every frame, though most frames (velocities, identifications, Mode S
    replies) change neither altitude nor position: a height is remembered by its inputs
    until the QNH estimate takes another sample (the configuration, the site and the
    terrain do not change while the model lives).
    """

    def __init__(
        self,
        site_elevation_ft: float,
        *,
        qnh_hpa: float | None = None,
        geoid_m: float = 0.0,
        terrain: Terrain | None = None,
    ):
        self.site_elevation_ft = site_elevation_ft
        self.qnh_hpa = qnh_hpa
        self.geoid_ft = geoid_m * M_TO_FT
        self.terrain = terrain
        self.qnh = QnhEstimator(geoid_m)
        self._memo: dict[tuple[int | None, int | None, float | None, float | None], Height | None]
        self._memo = {}
        self._memo_revision = 0

    def observe(self, alt_baro_ft: int | None, alt_gnss_ft: int | None) -> None:
        self.qnh.add(alt_baro_ft, alt_gnss_ft)

    def msl_ft(
        self, alt_baro_ft: int | None, alt_gnss_ft: int | None
    ) -> tuple[float, AglSource] | None:
        if alt_gnss_ft is not None:
            return alt_gnss_ft - self.geoid_ft, "gnss"
        if alt_baro_ft is None:
            return None
        if self.qnh_hpa is not None:
            return alt_baro_ft + (self.qnh_hpa - 1013.25) * FT_PER_HPA, "baro_qnh"
        offset = self.qnh.offset_ft
        if offset is not None:
            return alt_baro_ft + offset, "baro_traffic"
        return float(alt_baro_ft), "baro_std"

    def height(
        self,
        alt_baro_ft: int | None,
        alt_gnss_ft: int | None,
        lat: float | None,
        lon: float | None,
    ) -> Height | None:
        memo = self._memo
        key = (alt_baro_ft, alt_gnss_ft, lat, lon)
        if self.qnh.revision != self._memo_revision:
            memo.clear()
            self._memo_revision = self.qnh.revision
        else:
            known = memo.get(key, _MISS)
            if known is not _MISS:
                return known  # type: ignore[return-value]
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        height = memo[key] = self._height(alt_baro_ft, alt_gnss_ft, lat, lon)
        return height

    def _height(
        self,
        alt_baro_ft: int | None,
        alt_gnss_ft: int | None,
        lat: float | None,
        lon: float | None,
    ) -> Height | None:
        msl = self.msl_ft(alt_baro_ft, alt_gnss_ft)
        if msl is None:
            return None
        ground_src: GroundSource = "site"
        ground = self.site_elevation_ft
        if self.terrain is not None and lat is not None and lon is not None:
            elev = self.terrain.elevation_ft(lat, lon)
            if elev is not None:
                ground, ground_src = elev, "terrain"
        value, source = msl
        agl = max(round(value - ground), 0)  # nothing flies below the ground
        return Height(agl, source, _UNCERTAINTY_FT[source], ground_src)
