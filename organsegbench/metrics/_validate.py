"""Input checks shared by the metric functions: masks, shapes and spacings, with errors that name the fix."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from organsegbench.errors import GeometryMismatchError, OrganSegBenchError


def as_mask(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` as a boolean mask (non-zero = foreground), without a copy when it is already boolean."""
    a = np.asarray(array)
    if a.ndim not in (2, 3):
        raise OrganSegBenchError(
            f"{name} must be a 2D or 3D mask, got an array of shape {a.shape}",
            "pass one volume (z, y, x) or one slice (y, x); evaluate 4D series frame by frame",
        )
    return a if a.dtype == bool else a != 0


def check_same_shape(ref: np.ndarray, pred: np.ndarray) -> None:
    """Raise :class:`GeometryMismatchError` unless ``ref`` and ``pred`` have the same shape."""
    if ref.shape != pred.shape:
        raise GeometryMismatchError(
            f"reference shape {ref.shape} differs from prediction shape {pred.shape}",
            "resample the prediction onto the reference grid first (organsegbench.io.geometry.resample_to)",
        )


def check_spacing(spacing_zyx: Sequence[float], ndim: int) -> np.ndarray:
    """Validate the voxel spacing in mm, array-axis order; returns it as a float64 array."""
    try:
        sp = np.asarray(spacing_zyx, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise OrganSegBenchError(
            f"spacing_zyx {spacing_zyx!r} is not a sequence of numbers",
            "pass the voxel size in mm in array-axis order, e.g. image.spacing_zyx",
        ) from exc
    if sp.size != ndim:
        raise OrganSegBenchError(
            f"spacing_zyx {tuple(sp.tolist())} has {sp.size} values but the masks have {ndim} dimensions",
            f"pass {ndim} spacings in mm in array-axis order (z, y, x), e.g. image.spacing_zyx",
        )
    if not all(math.isfinite(s) and s > 0 for s in sp):
        raise OrganSegBenchError(
            f"spacing_zyx {tuple(sp.tolist())} must be positive and finite (mm)",
            "read the spacing from the image header (Image.spacing_zyx); it is never 0 or negative",
        )
    return sp


def check_tolerance(tolerance_mm: float) -> float:
    """Validate the NSD tolerance in mm (>= 0, finite)."""
    t = float(tolerance_mm)
    if not (math.isfinite(t) and t >= 0):
        raise OrganSegBenchError(
            f"nsd tolerance {tolerance_mm!r} mm must be a finite number >= 0",
            "pass nsd_tolerance_mm, e.g. 2.0 (mm)",
        )
    return t


def check_pair(ref: np.ndarray, pred: np.ndarray, spacing_zyx: Sequence[float] | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Masks as booleans, same shape checked, spacing validated (``None`` stays ``None``)."""
    r = as_mask(ref, "reference")
    p = as_mask(pred, "prediction")
    check_same_shape(r, p)
    sp = None if spacing_zyx is None else check_spacing(spacing_zyx, r.ndim)
    return r, p, sp
