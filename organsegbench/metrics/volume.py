"""Volume metrics: volume in mL and the reference-relative volume errors.

* ``volume`` = voxel count × voxel volume (product of the spacings in mm) / 1000, in mL.
* ``volume_error_rate`` = |V_ref − V_pred| / V_ref (fraction; the seed benchmark's "volume error rate").
* ``rvd`` (relative volume difference) = (V_pred − V_ref) / V_ref, signed (medpy ``ravd``); positive = the
  prediction is too large.

Both ratios are NaN with reason when the reference is empty (``"reference empty"``/``"both empty"``); an
empty prediction gives 1.0 and −1.0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from organsegbench.metrics._validate import as_mask, check_pair, check_spacing
from organsegbench.metrics.overlap import Counts

NAN = float("nan")


def voxel_volume_ml(spacing: np.ndarray) -> float:
    """Volume of one voxel in mL for a spacing in mm."""
    return float(np.prod(spacing)) / 1000.0


def volume_ml(mask: np.ndarray, spacing_zyx: Sequence[float]) -> float:
    """Volume of ``mask`` in mL (voxel count × product of the spacings in mm / 1000); 0.0 for an empty mask."""
    m = as_mask(mask, "mask")
    return int(np.count_nonzero(m)) * voxel_volume_ml(check_spacing(spacing_zyx, m.ndim))


def volume_error_rate_from(c: Counts) -> tuple[float, str | None]:
    """|V_ref − V_pred| / V_ref from counts (spacing cancels), and reason."""
    if c.n_ref == 0:
        return NAN, c.reason
    return abs(c.n_ref - c.n_pred) / float(c.n_ref), None


def rvd_from(c: Counts) -> tuple[float, str | None]:
    """(V_pred − V_ref) / V_ref from counts, and reason."""
    if c.n_ref == 0:
        return NAN, c.reason
    return (c.n_pred - c.n_ref) / float(c.n_ref), None


def volume_error_rate(ref: np.ndarray, pred: np.ndarray) -> float:
    """Volume error rate |V_ref − V_pred| / V_ref (fraction, ≥ 0); NaN when the reference is empty."""
    r, p, _ = check_pair(ref, pred)
    return volume_error_rate_from(Counts(int(np.count_nonzero(r)), int(np.count_nonzero(p)), 0))[0]


def relative_volume_difference(ref: np.ndarray, pred: np.ndarray) -> float:
    """Relative volume difference (V_pred − V_ref) / V_ref (signed fraction); NaN when the reference is empty."""
    r, p, _ = check_pair(ref, pred)
    return rvd_from(Counts(int(np.count_nonzero(r)), int(np.count_nonzero(p)), 0))[0]
