"""Overlap metrics (fractions in [0, 1]) from voxel counts: DSC, IoU, sensitivity, precision.

With ``R`` the reference voxels, ``P`` the prediction voxels and ``|R ∩ P|`` the true positives:

* ``dsc`` = 2 |R ∩ P| / (|R| + |P|)  (medpy ``dc``; medpy returns 1.0 when both are empty, we return NaN)
* ``iou`` = |R ∩ P| / |R ∪ P|  (Jaccard, medpy ``jc``)
* ``sensitivity`` = |R ∩ P| / |R|  (recall, true-positive rate)
* ``precision`` = |R ∩ P| / |P|  (positive predictive value)

Empty masks follow :mod:`.results`: a ratio whose denominator is 0 is NaN with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from organsegbench.metrics._validate import check_pair
from organsegbench.metrics.results import BOTH_EMPTY, PREDICTION_EMPTY, empty_reason

NAN = float("nan")


@dataclass(frozen=True)
class Counts:
    """Voxel counts of one structure: reference, prediction and their intersection."""

    n_ref: int
    n_pred: int
    n_both: int

    @classmethod
    def of(cls, ref: np.ndarray, pred: np.ndarray) -> Counts:
        """Counts of two boolean masks of the same shape."""
        return cls(int(np.count_nonzero(ref)), int(np.count_nonzero(pred)),
                   int(np.count_nonzero(np.logical_and(ref, pred))))

    @property
    def reason(self) -> str | None:
        """Empty-mask reason (see :func:`.results.empty_reason`)."""
        return empty_reason(self.n_ref, self.n_pred)

    def dsc(self) -> tuple[float, str | None]:
        """Dice similarity coefficient and reason."""
        if self.n_ref + self.n_pred == 0:
            return NAN, BOTH_EMPTY
        return 2.0 * self.n_both / float(self.n_ref + self.n_pred), None

    def iou(self) -> tuple[float, str | None]:
        """Intersection over union (Jaccard) and reason."""
        union = self.n_ref + self.n_pred - self.n_both
        if union == 0:
            return NAN, BOTH_EMPTY
        return float(self.n_both) / float(union), None

    def sensitivity(self) -> tuple[float, str | None]:
        """Sensitivity (recall) and reason."""
        if self.n_ref == 0:
            return NAN, self.reason
        return self.n_both / float(self.n_ref), None

    def precision(self) -> tuple[float, str | None]:
        """Precision (positive predictive value) and reason."""
        if self.n_pred == 0:
            return NAN, BOTH_EMPTY if self.n_ref == 0 else PREDICTION_EMPTY
        return self.n_both / float(self.n_pred), None


def _counts(ref: np.ndarray, pred: np.ndarray) -> Counts:
    r, p, _ = check_pair(ref, pred)
    return Counts.of(r, p)


def dice(ref: np.ndarray, pred: np.ndarray) -> float:
    """Dice similarity coefficient 2|R∩P|/(|R|+|P|) in [0, 1]; NaN when both masks are empty."""
    return _counts(ref, pred).dsc()[0]


def iou(ref: np.ndarray, pred: np.ndarray) -> float:
    """Intersection over union |R∩P|/|R∪P| in [0, 1]; NaN when both masks are empty."""
    return _counts(ref, pred).iou()[0]


def sensitivity(ref: np.ndarray, pred: np.ndarray) -> float:
    """Sensitivity (recall) |R∩P|/|R| in [0, 1]; NaN when the reference is empty."""
    return _counts(ref, pred).sensitivity()[0]


def precision(ref: np.ndarray, pred: np.ndarray) -> float:
    """Precision |R∩P|/|P| in [0, 1]; NaN when the prediction is empty."""
    return _counts(ref, pred).precision()[0]


__all__ = ["Counts", "dice", "iou", "sensitivity", "precision"]
