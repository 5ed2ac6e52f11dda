"""Robustness: the worst cases of every model x structure.

For each model and structure with ``N`` cases that have a defined value, the worst ``n = max(1, floor(0.05 N))``
cases are listed by name with their values: lowest Dice (DSC, unitless) and highest HD95 (mm). Cases whose value is
undefined (NaN, e.g. HD95 when one mask is empty) cannot be ranked; they are counted in ``n_undefined`` of every
row of their group so that they are never dropped silently.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from organsegbench.analysis._common import canonical_metric, metric_rows

#: metric -> True when larger values are worse
WORSE_IS_HIGHER = {"dsc": False, "iou": False, "nsd": False, "sensitivity": False, "precision": False,
                   "hd95": True}


def worst_count(n_cases: int, fraction: float = 0.05) -> int:
    """Number of worst cases to list among ``n_cases``: ``max(1, floor(fraction * n_cases))`` (0 for none)."""
    if n_cases <= 0:
        return 0
    return max(1, math.floor(fraction * n_cases + 1e-9))


def worst_cases(table: pd.DataFrame, metrics: tuple[str, ...] = ("dsc", "hd95"),
                fraction: float = 0.05) -> pd.DataFrame:
    """The worst ``fraction`` of cases per model x structure x metric.

    Args:
        table: tidy long table (columns case, model, structure, metric, value[, status, reason]).
        metrics: metrics to rank by (``dice`` is accepted for ``dsc``); ``dsc`` ranks ascending (low is bad),
            ``hd95`` descending (high is bad); others as :data:`WORSE_IS_HIGHER` says (descending by default).
        fraction: share of cases to list (default 5 %).

    Returns:
        One row per listed case: model, structure, metric, rank (1 = worst), case, value, n_cases (ranked),
        n_listed, n_undefined.
    """
    keys = ["model", "structure"]
    parts = []
    for metric in metrics:
        rows = metric_rows(table, metric)
        if rows.empty:
            continue
        higher_worse = WORSE_IS_HIGHER.get(canonical_metric(metric), True)
        rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
        finite = np.isfinite(rows["value"])
        groups = rows.groupby(keys).size().rename("n_all")
        valid = rows[finite].sort_values([*keys, "value", "case"], ascending=[True, True, not higher_worse, True])
        counts = valid.groupby(keys).size().rename("n_cases")
        info = pd.concat([groups, counts], axis=1).fillna(0).astype(int)
        info["n_listed"] = [worst_count(n, fraction) for n in info["n_cases"]]
        info["n_undefined"] = info["n_all"] - info["n_cases"]
        valid = valid.assign(rank=valid.groupby(keys).cumcount() + 1).join(info, on=keys)
        listed = valid[valid["rank"] <= valid["n_listed"]].assign(metric=metric)
        empty = info[info["n_cases"] == 0].reset_index().assign(metric=metric, rank=np.nan, case=None, value=np.nan)
        parts += [listed, empty]
    cols = ["model", "structure", "metric", "rank", "case", "value", "n_cases", "n_listed", "n_undefined"]
    parts = [p[cols] for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
