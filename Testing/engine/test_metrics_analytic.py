"""Metrics on shapes with known answers: shifted cubes, concentric spheres, single voxels, anisotropic grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
import synthetic

from organsegbench import metrics as M
from organsegbench.metrics.surface import voxel_surface

ANISO = (1.5, 0.7, 0.9)  # z, y, x mm


@pytest.mark.parametrize("shift", [1, 3, 6])
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), ANISO])
def test_shifted_cubes_known_values(shift: int, spacing: tuple[float, float, float]) -> None:
    shape = (30, 30, 30)
    ref = synthetic.box(shape, (10, 10, 10), (20, 20, 20))
    pred = synthetic.box(shape, (10, 10, 10 + shift), (20, 20, 20 + shift))
    assert M.dice(ref, pred) == pytest.approx((10 - shift) / 10)
    assert M.iou(ref, pred) == pytest.approx((10 - shift) / (10 + shift))
    assert M.sensitivity(ref, pred) == pytest.approx((10 - shift) / 10)
    assert M.precision(ref, pred) == pytest.approx((10 - shift) / 10)
    # the x-faces move by shift voxels along x; every other surface voxel is closer than that
    assert M.hd(ref, pred, spacing) == pytest.approx(shift * spacing[2])
    assert M.hd95(ref, pred, spacing) <= shift * spacing[2] + 1e-12
    assert M.asd_ref_to_pred(ref, pred, spacing) == pytest.approx(M.asd_pred_to_ref(ref, pred, spacing))
    assert M.volume_ml(ref, spacing) == pytest.approx(1000 * math.prod(spacing) / 1000)
    assert M.volume_error_rate(ref, pred) == 0.0
    assert M.relative_volume_difference(ref, pred) == 0.0


def test_identical_masks_are_perfect(rng: np.random.Generator) -> None:
    m = synthetic.random_blobs((24, 28, 32), 1, seed=3) > 0
    assert M.dice(m, m) == 1.0 and M.iou(m, m) == 1.0
    for f in (M.hd, M.hd95, M.assd, M.asd_ref_to_pred, M.asd_pred_to_ref):
        assert f(m, m, ANISO) == 0.0
    assert M.nsd(m, m, ANISO, tolerance_mm=0.0) == 1.0


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (1.5, 0.7, 0.7)])
def test_concentric_spheres_distance_is_radius_difference(spacing: tuple[float, float, float]) -> None:
    shape = (48, 80, 80) if spacing[0] > 1 else (64, 64, 64)
    centre = tuple(n * s / 2 for n, s in zip(shape, spacing, strict=True))
    inner = synthetic.sphere(shape, centre, 12.0, spacing)
    outer = synthetic.sphere(shape, centre, 18.0, spacing)
    tol = max(spacing)  # voxel discretisation of the two surfaces
    for f in (M.hd, M.hd95, M.assd, M.asd_ref_to_pred, M.asd_pred_to_ref):
        assert abs(f(inner, outer, spacing) - 6.0) <= tol, f.__name__
    assert M.nsd(inner, outer, spacing, tolerance_mm=6.0 + tol) == 1.0
    assert M.nsd(inner, outer, spacing, tolerance_mm=6.0 - 2 * tol) == 0.0
    expected_ratio = (12.0 / 18.0) ** 3  # volume ratio of the balls
    assert M.precision(outer, inner) == 1.0  # the inner ball lies inside the outer one
    assert M.sensitivity(outer, inner) == pytest.approx(expected_ratio, rel=0.03)
    assert M.dice(outer, inner) == pytest.approx(2 * expected_ratio / (1 + expected_ratio), abs=0.02)
    assert M.volume_ml(outer, spacing) == pytest.approx(4 / 3 * math.pi * 18.0**3 / 1000, rel=0.02)


def test_anisotropic_spacing_scales_each_axis() -> None:
    shape = (20, 20, 20)
    ref = synthetic.box(shape, (5, 5, 5), (10, 10, 10))
    for axis, expected in enumerate((2 * 1.5, 2 * 0.7, 2 * 0.9)):
        lo, hi = [5, 5, 5], [10, 10, 10]
        lo[axis] += 2
        hi[axis] += 2
        pred = synthetic.box(shape, tuple(lo), tuple(hi))
        assert M.hd(ref, pred, ANISO) == pytest.approx(expected)


def test_single_voxels() -> None:
    a = np.zeros((10, 10, 10), dtype=bool)
    b = a.copy()
    a[5, 5, 5] = True
    b[5, 5, 8] = True
    sp = (1.0, 1.0, 2.0)
    for f in (M.hd, M.hd95, M.assd, M.asd_ref_to_pred, M.asd_pred_to_ref):
        assert f(a, b, sp) == pytest.approx(6.0)
    assert M.dice(a, b) == 0.0
    assert M.hd(a, a, sp) == 0.0 and M.dice(a, a) == 1.0
    # surfels sit on voxel corners (x = 5, 6 for a and 8, 9 for b): the facing corners are 2 voxels = 4 mm apart,
    # the far ones 6 mm; all 16 corners carry the same area
    assert M.nsd(a, b, sp, tolerance_mm=3.9) == 0.0
    assert M.nsd(a, b, sp, tolerance_mm=4.0) == pytest.approx(0.5)
    assert M.nsd(a, b, sp, tolerance_mm=6.0) == 1.0


def test_border_voxels_are_surface_like_medpy() -> None:
    full = np.ones((6, 7, 8), dtype=bool)
    surf = voxel_surface(full, (0, 0, 0), full.shape)
    assert len(surf) == full.size - 4 * 5 * 6  # only the inner (n-2)^3 block is interior
    # a mask filling the volume vs. the same mask without its last x column: 1 voxel along x
    pred = full.copy()
    pred[:, :, -1] = False
    assert M.hd(full, pred, ANISO) == pytest.approx(ANISO[2])
