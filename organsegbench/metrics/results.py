"""The result record of every metric and the reasons attached to undefined values (empty-mask policy).

Empty-mask policy (documented in ``docs/metrics.md``, tested in ``Testing/engine/test_metrics_empty.py``):

=====================  =====================  =====================  ==========================
metric                 both empty             reference empty        prediction empty
=====================  =====================  =====================  ==========================
dsc, iou               NaN "both empty"       0.0                    0.0
sensitivity            NaN "both empty"       NaN "reference empty"  0.0
precision              NaN "both empty"       0.0                    NaN "prediction empty"
hd, hd95, assd, asd_*  NaN "both empty"       NaN "reference empty"  NaN "prediction empty"
nsd                    NaN "both empty"       0.0                    0.0
volume_ref/pred (mL)   0.0                    0.0 (ref)              0.0 (pred)
volume_error_rate,rvd  NaN "both empty"       NaN "reference empty"  1.0 / -1.0
=====================  =====================  =====================  ==========================

A distance is never 0 (or any number) because a mask is empty: it is NaN with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: reason strings (stable: downstream tables group on them)
BOTH_EMPTY = "both empty"
REFERENCE_EMPTY = "reference empty"
PREDICTION_EMPTY = "prediction empty"


@dataclass(frozen=True)
class MetricResult:
    """One metric value for one structure.

    Attributes:
        label: label value in the label maps (1 for a pair of binary masks).
        metric: registry name of the metric (see :data:`organsegbench.metrics.METRICS`).
        value: the value in the metric's unit (mm for distances, mL for volumes, a fraction otherwise);
            NaN when undefined.
        reason: why ``value`` is NaN (``"both empty"``, ``"reference empty"``, ``"prediction empty"``);
            ``None`` when the value is defined.
    """

    label: int
    metric: str
    value: float
    reason: str | None = None

    @property
    def defined(self) -> bool:
        """True when ``value`` is a number (not NaN)."""
        return not math.isnan(self.value)


def empty_reason(n_ref: int, n_pred: int) -> str | None:
    """The empty-mask reason for voxel counts ``n_ref`` and ``n_pred``, or ``None`` when both are non-empty."""
    if n_ref == 0 and n_pred == 0:
        return BOTH_EMPTY
    if n_ref == 0:
        return REFERENCE_EMPTY
    if n_pred == 0:
        return PREDICTION_EMPTY
    return None
