"""Seeded synthetic shapes for tests (spheres, boxes, label maps) on anisotropic grids."""

from __future__ import annotations

import numpy as np

from organsegbench.io.image import Image


def sphere(shape: tuple[int, int, int], centre_mm: tuple[float, float, float], radius_mm: float,
           spacing_zyx: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Boolean ball of ``radius_mm`` around ``centre_mm`` (array-axis order z, y, x, mm from voxel 0)."""
    zz, yy, xx = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing_zyx, strict=True)], indexing="ij")
    cz, cy, cx = centre_mm
    return (zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= radius_mm**2


def box(shape: tuple[int, int, int], lo: tuple[int, int, int], hi: tuple[int, int, int]) -> np.ndarray:
    """Boolean box covering voxel indices ``lo`` (inclusive) to ``hi`` (exclusive), array-axis order."""
    out = np.zeros(shape, dtype=bool)
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return out


def random_blobs(shape: tuple[int, int, int], n_labels: int, seed: int) -> np.ndarray:
    """A label map with ``n_labels`` random non-overlapping-ish balls (uint8), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    out = np.zeros(shape, dtype=np.uint8)
    for label in range(1, n_labels + 1):
        c = [rng.uniform(0.25 * n, 0.75 * n) for n in shape]
        r = rng.uniform(0.08, 0.2) * min(shape)
        out[sphere(shape, tuple(c), r)] = label
    return out


def image(array: np.ndarray, spacing_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0),
          origin: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Image:
    """Wrap an array as an :class:`Image` with identity direction."""
    return Image(array=array, spacing=spacing_xyz, origin=origin)
