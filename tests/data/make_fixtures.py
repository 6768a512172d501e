"""Make the tiny committed map fixtures in this folder (each < 10 kB). Run: python tests/data/make_fixtures.py.

- ``canonical.mrc``: 10×8×6 (x,y,z) ramp, voxel (1.0, 1.2, 0.8) Å, ORIGIN (5, -3, 2) Å, axis order 1,2,3.
- ``permuted_231.mrc``: the same map written with MAPC/MAPR/MAPS = 2,3,1; must read identically.
- ``nstart.ccp4``: the same data with NSTART (3, -2, 4) and ORIGIN 0 (crystallographic convention).
- ``canonical.mrc.gz``: gzipped ``canonical.mrc``.
- ``truncated.mrc``: ``canonical.mrc`` cut 200 bytes short.
- ``not_a_map.mrc``: text, not a map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from densharp.io.maps import write_map
from densharp.volume import DensityMap, OriginSource

HERE = Path(__file__).parent


def ramp() -> np.ndarray:
    """(z, y, x) = (6, 8, 10) float32 with a distinct value in every voxel: 100 z + 10 y + x."""
    z, y, x = np.meshgrid(np.arange(6), np.arange(8), np.arange(10), indexing="ij")
    return (100 * z + 10 * y + x).astype(np.float32)


def main() -> None:
    """Write every fixture (overwriting)."""
    base = DensityMap(ramp(), (1.0, 1.2, 0.8), origin_xyz_A=(5.0, -3.0, 2.0))
    write_map(HERE / "canonical.mrc", base, overwrite=True, label="densharp test fixture: canonical")
    perm = DensityMap(ramp(), (1.0, 1.2, 0.8), origin_xyz_A=(5.0, -3.0, 2.0), axis_order_crs=(2, 3, 1))
    write_map(HERE / "permuted_231.mrc", perm, overwrite=True, label="densharp test fixture: MAPC/R/S 2,3,1")
    ns = DensityMap(
        ramp(), (1.0, 1.2, 0.8), origin_xyz_A=(3.0, -2.4, 3.2), nstart_xyz=(3, -2, 4), origin_source=OriginSource.NSTART
    )
    write_map(HERE / "nstart.ccp4", ns, overwrite=True, label="densharp test fixture: nstart")
    write_map(HERE / "canonical.mrc.gz", base, overwrite=True, label="densharp test fixture: gzip")
    raw = (HERE / "canonical.mrc").read_bytes()
    (HERE / "truncated.mrc").write_bytes(raw[:-200])
    (HERE / "not_a_map.mrc").write_text("this is not a density map\n" * 50)


if __name__ == "__main__":
    main()
