"""Surface-distance metrics in mm: HD, HD95, ASSD, directed ASDs (medpy definitions) and NSD (Nikolov et al.).

Definitions (``S_R``, ``S_P``: voxel surfaces of reference and prediction, see :mod:`.surface`;
``d(x, S)``: Euclidean distance in mm, anisotropic spacing, from voxel centre ``x`` to the nearest voxel centre
of ``S``; ``D_PR = [d(p, S_R) for p in S_P]``, ``D_RP = [d(r, S_P) for r in S_R]``):

* ``hd``   = max(max D_PR, max D_RP)  (medpy ``hd``)
* ``hd95`` = 95th percentile (numpy linear interpolation) of the concatenation D_PR ++ D_RP (medpy ``hd95``);
  MONAI and surface-distance differ, see ``docs/metrics.md``.
* ``assd`` = mean of the concatenation D_PR ++ D_RP (medpy 0.5.2 ``assd``: each surface voxel weighs the same;
  medpy < 0.5 took the mean of the two directed means instead).
* ``asd_ref_to_pred`` = mean D_RP; ``asd_pred_to_ref`` = mean D_PR (medpy ``asd(pred, ref)``).
* ``nsd``  = normalised surface Dice at ``tolerance_mm``: surfel area of each surface within the tolerance of
  the other, over the total surfel area of both (surface-distance ``compute_surface_dice_at_tolerance``).

Empty masks: distances are NaN with reason (never a silent 0); NSD is 0.0 when exactly one mask is empty and
NaN when both are (see :mod:`.results`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TypeVar

import numpy as np

from organsegbench.metrics._validate import check_pair, check_tolerance
from organsegbench.metrics.results import empty_reason
from organsegbench.metrics.surface import Points, Target, bounding_box, surfels, voxel_surface

NAN = float("nan")
T1 = TypeVar("T1")
T2 = TypeVar("T2")


class Crop:
    """A mask given as its bounding-box crop (boolean) and the crop's offset in the volume; or empty."""

    def __init__(self, crop: np.ndarray | None, offset: tuple[int, ...] | None) -> None:
        self.crop = crop
        self.offset = offset

    @classmethod
    def of(cls, mask: np.ndarray) -> Crop:
        """Crop a full boolean mask to its bounding box."""
        bb = bounding_box(mask)
        if bb is None:
            return cls(None, None)
        return cls(mask[bb], tuple(s.start for s in bb))

    @property
    def empty(self) -> bool:
        """True when the mask has no foreground voxel."""
        return self.crop is None


class SurfacePair:
    """Lazily computed surfaces and distances of one reference/prediction pair (each computed at most once).

    Args:
        ref, pred: the two masks as :class:`Crop`.
        shape: volume shape (array-axis order).
        spacing: voxel size in mm, array-axis order.
        workers: 1 = serial; any other value computes the reference and prediction sides on two threads.
    """

    def __init__(self, ref: Crop, pred: Crop, shape: tuple[int, ...], spacing: np.ndarray, workers: int = 1) -> None:
        self.ref, self.pred, self.shape, self.spacing, self.workers = ref, pred, tuple(shape), spacing, workers
        n_ref = 0 if ref.empty else 1
        n_pred = 0 if pred.empty else 1
        self.reason = empty_reason(n_ref, n_pred)

    def _two(self, f: Callable[[], T1], g: Callable[[], T2]) -> tuple[T1, T2]:
        """``(f(), g())``, run on two threads when ``workers != 1`` (numpy and cKDTree release the GIL)."""
        if self.workers == 1:
            return f(), g()
        with ThreadPoolExecutor(max_workers=2) as pool:
            fut = pool.submit(f)
            second = g()
            return fut.result(), second

    @cached_property
    def _surfaces(self) -> tuple[Points, Points]:
        return self._two(lambda: voxel_surface(self.ref.crop, self.ref.offset, self.shape),
                         lambda: voxel_surface(self.pred.crop, self.pred.offset, self.shape))

    @property
    def ref_surface(self) -> Points:
        """medpy voxel surface of the reference."""
        return self._surfaces[0]

    @property
    def pred_surface(self) -> Points:
        """medpy voxel surface of the prediction."""
        return self._surfaces[1]

    @cached_property
    def _distances(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = self._surfaces
        return self._two(lambda: Target(b, self.spacing).distances_from(a),
                         lambda: Target(a, self.spacing).distances_from(b))

    @property
    def d_ref_to_pred(self) -> np.ndarray:
        """Distances (mm) from every reference surface voxel to the prediction surface."""
        return self._distances[0]

    @property
    def d_pred_to_ref(self) -> np.ndarray:
        """Distances (mm) from every prediction surface voxel to the reference surface."""
        return self._distances[1]

    @cached_property
    def _both(self) -> np.ndarray:
        return np.concatenate([self.d_pred_to_ref, self.d_ref_to_pred])  # medpy's order

    def hd(self) -> tuple[float, str | None]:
        """Hausdorff distance (mm) and reason."""
        if self.reason:
            return NAN, self.reason
        return float(max(self.d_pred_to_ref.max(), self.d_ref_to_pred.max())), None

    def hd95(self) -> tuple[float, str | None]:
        """95th-percentile Hausdorff distance (mm, medpy definition) and reason."""
        if self.reason:
            return NAN, self.reason
        return float(np.percentile(self._both, 95)), None

    def assd(self) -> tuple[float, str | None]:
        """Average symmetric surface distance (mm, medpy 0.5.2 definition) and reason."""
        if self.reason:
            return NAN, self.reason
        return float(self._both.mean()), None

    def asd_ref_to_pred(self) -> tuple[float, str | None]:
        """Mean distance (mm) from the reference surface to the prediction surface, and reason."""
        if self.reason:
            return NAN, self.reason
        return float(self.d_ref_to_pred.mean()), None

    def asd_pred_to_ref(self) -> tuple[float, str | None]:
        """Mean distance (mm) from the prediction surface to the reference surface, and reason."""
        if self.reason:
            return NAN, self.reason
        return float(self.d_pred_to_ref.mean()), None

    @cached_property
    def _surfels(self) -> tuple[Points, Points]:
        return self._two(lambda: surfels(self.ref.crop, self.ref.offset, self.shape, self.spacing),
                         lambda: surfels(self.pred.crop, self.pred.offset, self.shape, self.spacing))

    def nsd(self, tolerance_mm: float = 2.0) -> tuple[float, str | None]:
        """Normalised surface Dice at ``tolerance_mm`` (fraction in [0, 1]) and reason."""
        if self.ref.empty and self.pred.empty:
            return NAN, self.reason
        if self.ref.empty or self.pred.empty:
            return 0.0, None
        a, b = self._surfels
        a_near, b_near = self._two(lambda: Target(b, self.spacing).within(a, tolerance_mm),
                                   lambda: Target(a, self.spacing).within(b, tolerance_mm))
        overlap = a.area[a_near].sum() + b.area[b_near].sum()
        return float(overlap / (a.area.sum() + b.area.sum())), None


def _pair(ref: np.ndarray, pred: np.ndarray, spacing_zyx: Sequence[float], workers: int = 1) -> SurfacePair:
    r, p, sp = check_pair(ref, pred, spacing_zyx)
    return SurfacePair(Crop.of(r), Crop.of(p), r.shape, sp, workers)


def hd(ref: np.ndarray, pred: np.ndarray, spacing_zyx: Sequence[float]) -> float:
    """Hausdorff distance in mm between the voxel surfaces (medpy ``hd``); NaN if a mask is empty."""
    return _pair(ref, pred, spacing_zyx).hd()[0]


def hd95(ref: np.ndarray, pred: np.ndarray, spacing_zyx: Sequence[float]) -> float:
    """95th-percentile Hausdorff distance in mm (medpy ``hd95``: percentile of both directed distance sets
    pooled); NaN if a mask is empty."""
    return _pair(ref, pred, spacing_zyx).hd95()[0]


def assd(ref: np.ndarray, pred: np.ndarray, spacing_zyx: Sequence[float]) -> float:
    """Average symmetric surface distance in mm (medpy 0.5.2 ``assd``: mean of both directed distance sets
    pooled); NaN if a mask is empty."""
    return _pair(ref, pred, spacing_zyx).assd()[0]


def asd_ref_to_pred(ref: np.ndarray, pred: np.ndarray, spacing_zyx: Sequence[float]) -> float:
    """Average distance in mm from the reference surface to the prediction surface; NaN if a mask is empty."""
    return _pair(ref, pred, spacing_zyx).asd_ref_to_pred()[0]


def asd_pred_to_ref(ref: np.ndarray, pred: np.ndarray, spacing_zyx: Sequence[float]) -> float:
    """Average distance in mm from the prediction surface to the reference surface (medpy ``asd(pred, ref)``);
    NaN if a mask is empty."""
    return _pair(ref, pred, spacing_zyx).asd_pred_to_ref()[0]


def nsd(ref: np.ndarray, pred: np.ndarray, spacing_zyx: Sequence[float], tolerance_mm: float = 2.0) -> float:
    """Normalised surface Dice (surface Dice) at ``tolerance_mm`` mm, in [0, 1] (Nikolov et al. 2021; equal to
    surface-distance's ``compute_surface_dice_at_tolerance``). 0.0 if exactly one mask is empty, NaN if both."""
    tol = check_tolerance(tolerance_mm)
    return _pair(ref, pred, spacing_zyx).nsd(tol)[0]
