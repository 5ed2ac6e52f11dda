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
        metrics: metrics to rank by (``dice`` is accepted for ``dsc``); ``dsc`` ranks ascending (low is bad), ``hd95`` descending (high is bad).
            Other metrics rank descending unless named in :data:`WORSE_IS_HIGHER`.
        fraction: share of cases to list (default 5 %).

    Returns:
        One row per listed case: model, structure, metric, rank (1 = worst), case, value, n_cases (ranked),
        n_listed, n_undefined.
    """
    out = []
    for metric in metrics:
        rows = metric_rows(table, metric)
        higher_worse = WORSE_IS_HIGHER.get(canonical_metric(metric), True)
        for (model, structure), grp in rows.groupby(["model", "structure"], sort=True):
            values = pd.to_numeric(grp["value"], errors="coerce")
            valid = grp.assign(value=values)[np.isfinite(values)]
            n_undefined = int(len(grp) - len(valid))
            n = worst_count(len(valid), fraction)
            ranked = valid.sort_values(["value", "case"], ascending=[not higher_worse, True]).head(n)
            for rank, (_, r) in enumerate(ranked.iterrows(), start=1):
                out.append({"model": model, "structure": structure, "metric": metric, "rank": rank,
                            "case": r["case"], "value": float(r["value"]), "n_cases": len(valid),
                            "n_listed": n, "n_undefined": n_undefined})
            if n == 0:
                out.append({"model": model, "structure": structure, "metric": metric, "rank": np.nan,
                            "case": None, "value": np.nan, "n_cases": 0, "n_listed": 0,
                            "n_undefined": n_undefined})
    cols = ["model", "structure", "metric", "rank", "case", "value", "n_cases", "n_listed", "n_undefined"]
    return pd.DataFrame(out, columns=cols)
