"""Geometry checks and resampling between grids.

``same_grid`` asks whether two images index the same voxels (size, spacing, origin, direction within tolerance);
``same_space`` asks whether they cover the same physical region, possibly with permuted or flipped axes (for
example a label map stored y-flipped relative to its CT). Label maps are always resampled with nearest neighbour.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from organsegbench.errors import GeometryMismatchError
from organsegbench.io.image import Image

#: default tolerances: spacing/origin in mm, direction cosines unitless
SPACING_TOL_MM = 1e-3
ORIGIN_TOL_MM = 1e-2
DIRECTION_TOL = 1e-4


def same_grid(a: Image, b: Image, spacing_tol: float = SPACING_TOL_MM, origin_tol: float = ORIGIN_TOL_MM,
              direction_tol: float = DIRECTION_TOL) -> bool:
    """True when ``a`` and ``b`` have the same size, spacing, origin and direction (within tolerances in mm)."""
    return (
        a.shape == b.shape
        and np.allclose(a.spacing, b.spacing, atol=spacing_tol)
        and np.allclose(a.origin, b.origin, atol=origin_tol)
        and np.allclose(a.direction, b.direction, atol=direction_tol)
    )


def _corner_points(img: Image) -> np.ndarray:
    """Physical (LPS, mm) positions of the 8 corner voxel centres."""
    nx, ny, nz = img.size
    idx = np.array([[i, j, k, 1.0] for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)])
    return (img.index_to_physical_matrix() @ idx.T).T[:, :3]


def same_space(a: Image, b: Image, tol_mm: float = ORIGIN_TOL_MM) -> bool:
    """True when both grids have the same voxel centres in physical space, whatever their axis order or signs.

    Compares the sets of corner voxel centres and the spacing magnitudes along physical axes.
    """
    if sorted(a.shape) != sorted(b.shape):
        return False
    pa = np.round(_corner_points(a) / tol_mm).astype(np.int64)
    pb = np.round(_corner_points(b) / tol_mm).astype(np.int64)
    sa = {tuple(p) for p in pa}
    sb = {tuple(p) for p in pb}
    if sa != sb:  # rounding may split a boundary case; fall back to a nearest-point test
        ca, cb = _corner_points(a), _corner_points(b)
        d = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=2)
        if not (np.all(d.min(axis=1) <= tol_mm) and np.all(d.min(axis=0) <= tol_mm)):
            return False
    step_a = np.sort(np.abs(a.direction @ np.diag(a.spacing)).max(axis=1))
    step_b = np.sort(np.abs(b.direction @ np.diag(b.spacing)).max(axis=1))
    return bool(np.allclose(step_a, step_b, atol=SPACING_TOL_MM))


def describe_mismatch(a: Image, b: Image, name_a: str = "reference", name_b: str = "prediction") -> str:
    """Name each field in which the two grids differ, with both values."""
    parts = []
    if a.size != b.size:
        parts.append(f"size {name_a} {a.size} vs {name_b} {b.size}")
    if not np.allclose(a.spacing, b.spacing, atol=SPACING_TOL_MM):
        parts.append(f"spacing {name_a} {tuple(round(s, 4) for s in a.spacing)} mm vs "
                     f"{name_b} {tuple(round(s, 4) for s in b.spacing)} mm")
    if not np.allclose(a.origin, b.origin, atol=ORIGIN_TOL_MM):
        parts.append(f"origin {name_a} {tuple(round(o, 3) for o in a.origin)} mm vs "
                     f"{name_b} {tuple(round(o, 3) for o in b.origin)} mm")
    if not np.allclose(a.direction, b.direction, atol=DIRECTION_TOL):
        parts.append(f"direction {name_a} {np.round(a.direction, 4).ravel().tolist()} vs "
                     f"{name_b} {np.round(b.direction, 4).ravel().tolist()}")
    return "; ".join(parts) if parts else "grids match"


def require_same_grid(a: Image, b: Image, name_a: str = "reference", name_b: str = "prediction",
                      option: str = "--resample") -> None:
    """Raise :class:`GeometryMismatchError` stating both geometries and the option that resamples."""
    if not same_grid(a, b):
        raise GeometryMismatchError(
            f"{name_a} and {name_b} are on different grids: {describe_mismatch(a, b, name_a, name_b)}",
            hint=f"resample {name_b} onto the {name_a} grid with {option} (nearest neighbour for label maps)",
        )


def resample_to(moving: Image, reference: Image, is_label: bool = True, default_value: float = 0.0) -> Image:
    """Resample ``moving`` onto ``reference``'s grid in physical space (identity transform).

    Label maps use nearest-neighbour interpolation (values are never blended); intensity images use linear.
    Voxels of the reference grid outside ``moving`` get ``default_value``.
    """
    interp = sitk.sitkNearestNeighbor if is_label else sitk.sitkLinear
    out = sitk.Resample(moving.to_sitk(), reference.to_sitk(), sitk.Transform(), interp, default_value,
                        sitk.sitkUnknown)
    arr = sitk.GetArrayFromImage(out)
    if moving.array.dtype == bool:
        arr = arr.astype(bool)
    return reference.with_array(arr, **{**moving.metadata, "resampled_to": reference.geometry_string()})


def align_to(moving: Image, reference: Image, resample: bool = False, name_moving: str = "prediction",
             name_reference: str = "reference", option: str = "--resample") -> Image:
    """Return ``moving`` on ``reference``'s grid.

    Same grid: returned unchanged. Same physical space with permuted/flipped axes: resampled exactly (lossless
    nearest-neighbour re-indexing). Otherwise resampled when ``resample`` is true, else
    :class:`GeometryMismatchError` naming both geometries and ``option``.
    """
    if same_grid(moving, reference):
        return moving
    if same_space(moving, reference) or resample:
        return resample_to(moving, reference, is_label=True)
    require_same_grid(reference, moving, name_reference, name_moving, option)
    return moving  # unreachable: require_same_grid raised
