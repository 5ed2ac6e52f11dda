"""Every requested metric for every structure of two label maps, cropping each label to its bounding boxes.

One pass per label map finds all bounding boxes (:func:`scipy.ndimage.find_objects`); each label is then
processed only inside its own boxes (reference box, prediction box, and their intersection for the overlap),
so the cost grows with the size of the structures, not with the number of labels × the volume.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage as ndi

from organsegbench.errors import GeometryMismatchError, OrganSegBenchError
from organsegbench.metrics._validate import check_spacing, check_tolerance
from organsegbench.metrics.distance import Crop, SurfacePair
from organsegbench.metrics.overlap import Counts
from organsegbench.metrics.registry import SURFACE_METRICS, resolve_metrics
from organsegbench.metrics.results import MetricResult
from organsegbench.metrics.surface import bounding_box
from organsegbench.metrics.volume import rvd_from, volume_error_rate_from, voxel_volume_ml

log = logging.getLogger(__name__)


def _as_labelmap(a: object, name: str) -> np.ndarray:
    arr = np.asarray(getattr(a, "array", a))
    if arr.ndim not in (2, 3):
        raise OrganSegBenchError(f"{name} label map must be 2D or 3D, got shape {arr.shape}",
                                 "pass one volume in array-axis order (z, y, x)")
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.array_equal(arr, np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise OrganSegBenchError(f"{name} label map has non-integer values (dtype {arr.dtype})",
                                     "pass an integer label map (0 = background); threshold probability maps first")
    if arr.size and arr.min() < 0:
        raise OrganSegBenchError(f"{name} label map has negative label {int(arr.min())}",
                                 "labels must be 0 (background) or positive integers")
    return arr


def _boxes(arr: np.ndarray) -> list[tuple[slice, ...] | None]:
    """Bounding box of every label value (index ``label - 1``), one pass over the volume."""
    if arr.dtype == bool:
        return [bounding_box(arr)]  # axis projections: faster than labelling for a single mask
    return ndi.find_objects(arr)


def _select(arr: np.ndarray, box: tuple[slice, ...], label: int) -> np.ndarray:
    """Boolean mask of ``label`` inside ``box``."""
    return arr[box] if arr.dtype == bool else arr[box] == label


def _box(boxes: list[tuple[slice, ...] | None], label: int) -> tuple[slice, ...] | None:
    return boxes[label - 1] if 0 < label <= len(boxes) else None


def _intersect(a: tuple[slice, ...], b: tuple[slice, ...]) -> tuple[slice, ...] | None:
    out = []
    for sa, sb in zip(a, b, strict=True):
        lo, hi = max(sa.start, sb.start), min(sa.stop, sb.stop)
        if lo >= hi:
            return None
        out.append(slice(lo, hi))
    return tuple(out)


def _check_labels(labels: Iterable[int]) -> list[int]:
    out = []
    for lab in labels:
        if isinstance(lab, bool) or not isinstance(lab, (int, np.integer)) or int(lab) <= 0:
            raise OrganSegBenchError(f"label {lab!r} is not a positive integer label value",
                                     "pass label values such as [1, 2, 5] (0 is background)")
        if int(lab) not in out:
            out.append(int(lab))
    return out


def evaluate_pair(ref: np.ndarray, pred: np.ndarray, spacing_zyx: Sequence[float],
                  labels: Iterable[int] | None = None, metrics: Iterable[str] | None = None,
                  nsd_tolerance_mm: float = 2.0, workers: int = 1) -> list[MetricResult]:
    """Compute ``metrics`` for every label of two label maps on the same grid.

    Args:
        ref: reference label map (integer, 0 = background; a boolean mask counts as label 1), or an ``Image``.
        pred: prediction label map on the same grid.
        spacing_zyx: voxel size in mm, array-axis order (``Image.spacing_zyx``).
        labels: label values to evaluate; ``None`` = every non-zero label present in ``ref`` or ``pred``. A label
            absent from both gives "both empty" results (see :mod:`.results` for the empty-mask policy).
        metrics: registry names or aliases (``None`` = all of :data:`METRICS`); unknown names raise
            :class:`~organsegbench.errors.UnknownNameError` listing close matches.
        nsd_tolerance_mm: tolerance of the normalised surface Dice in mm.
        workers: 1 (default) = single-threaded, suited to running cases in parallel processes; any other
            value computes the reference and prediction sides of each structure on two threads.

    Returns:
        One :class:`MetricResult` per (label, metric), labels in the given (or ascending) order, metrics in the
        requested order; distances in mm, volumes in mL.
    """
    names = resolve_metrics(metrics)
    tol = check_tolerance(nsd_tolerance_mm)
    r = _as_labelmap(ref, "reference")
    p = _as_labelmap(pred, "prediction")
    if r.shape != p.shape:
        raise GeometryMismatchError(
            f"reference shape {r.shape} differs from prediction shape {p.shape}",
            "resample the prediction onto the reference grid first (organsegbench.io.geometry.resample_to)")
    sp = check_spacing(spacing_zyx, r.ndim)
    boxes_r, boxes_p = _boxes(r), _boxes(p)
    if labels is None:
        present = {i + 1 for i, b in enumerate(boxes_r) if b is not None}
        present |= {i + 1 for i, b in enumerate(boxes_p) if b is not None}
        todo = sorted(present)
    else:
        todo = _check_labels(labels)
    need_surface = any(n in SURFACE_METRICS for n in names)
    vox_ml = voxel_volume_ml(sp)
    results: list[MetricResult] = []
    for lab in todo:
        br, bp = _box(boxes_r, lab), _box(boxes_p, lab)
        cr = Crop(_select(r, br, lab), tuple(s.start for s in br)) if br else Crop(None, None)
        cp = Crop(_select(p, bp, lab), tuple(s.start for s in bp)) if bp else Crop(None, None)
        both = _intersect(br, bp) if br and bp else None
        n_both = int(np.count_nonzero(_select(r, both, lab) & _select(p, both, lab))) if both else 0
        counts = Counts(0 if cr.empty else int(np.count_nonzero(cr.crop)),
                        0 if cp.empty else int(np.count_nonzero(cp.crop)), n_both)
        pair = SurfacePair(cr, cp, r.shape, sp, workers) if need_surface else None
        for name in names:
            value, reason = _one(name, counts, pair, vox_ml, tol)
            results.append(MetricResult(lab, name, value, reason))
        log.debug("label %d: %d reference / %d prediction voxels", lab, counts.n_ref, counts.n_pred)
    return results


def _one(name: str, c: Counts, pair: SurfacePair | None, vox_ml: float, tol: float) -> tuple[float, str | None]:
    if name == "dsc":
        return c.dsc()
    if name == "iou":
        return c.iou()
    if name == "sensitivity":
        return c.sensitivity()
    if name == "precision":
        return c.precision()
    if name == "volume_ref":
        return c.n_ref * vox_ml, None
    if name == "volume_pred":
        return c.n_pred * vox_ml, None
    if name == "volume_error_rate":
        return volume_error_rate_from(c)
    if name == "rvd":
        return rvd_from(c)
    assert pair is not None
    if name == "nsd":
        return pair.nsd(tol)
    return getattr(pair, name)()
