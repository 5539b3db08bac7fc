"""Ground elevation from SRTM HGT tiles placed in a directory.

A tile `N15W057.hgt` covers latitudes 15..16 N and longitudes 57..56 W; it is a square
grid of big-endian int16 metres, 3601 samples a side for 1" data or 1201 for 3",
rows from north to south. Tiles are memory-mapped (no read at start; the page cache
keeps the few that matter), and voids (-32768) read as unknown.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

VOID = -32768
_SIZES = {3601 * 3601 * 2: 3601, 1201 * 1201 * 2: 1201}
M_TO_FT = 3.28084


def tile_name(lat: float, lon: float) -> str:
    la, lo = math.floor(lat), math.floor(lon)
    return f"{'N' if la >= 0 else 'S'}{abs(la):02d}{'E' if lo >= 0 else 'W'}{abs(lo):03d}.hgt"


class Terrain:
    """Elevation lookups over a directory of HGT tiles. Missing tiles mean unknown."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._tiles: dict[str, np.ndarray | None] = {}

    def _tile(self, name: str) -> np.ndarray | None:
        if name not in self._tiles:
            path = self.directory / name
            grid = None
            if path.exists():
                side = _SIZES.get(path.stat().st_size)
                if side is not None:
                    grid = np.memmap(path, dtype=">i2", mode="r", shape=(side, side))
            self._tiles[name] = grid
        return self._tiles[name]

    def elevation_ft(self, lat: float, lon: float) -> float | None:
        """Bilinear ground elevation in feet, or None without a tile or over a void."""
        grid = self._tile(tile_name(lat, lon))
        if grid is None:
            return None
        n = grid.shape[0] - 1
        row = (math.floor(lat) + 1 - lat) * n
        col = (lon - math.floor(lon)) * n
        r0, c0 = min(int(row), n - 1), min(int(col), n - 1)
        fr, fc = row - r0, col - c0
        cell = grid[r0 : r0 + 2, c0 : c0 + 2].astype(np.float64)
        if (cell == VOID).any():
            return None
        top = cell[0, 0] * (1 - fc) + cell[0, 1] * fc
        bottom = cell[1, 0] * (1 - fc) + cell[1, 1] * fc
        return float(top * (1 - fr) + bottom * fr) * M_TO_FT
