"""Generalisation: how evenly a model performs across structures.

For each model and metric, the per-structure mean over cases is computed first; the spread of those means across
structures is then summarised by the standard deviation (ddof = 1) and the interquartile range (Q3 - Q1, linear
interpolation). Dice is unitless; HD95 is in mm. A small spread means the model generalises across anatomy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from organsegbench.analysis._common import canonical_metric, metric_rows


def structure_means(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean (NaN-skipping) of ``metric`` per model x structure with the number of defined values ``n``."""
    rows = metric_rows(table, metric)
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    g = rows.groupby(["model", "structure"])["value"]
    return pd.DataFrame({"mean": g.mean(), "n": g.count()}).reset_index()


def generalisation(table: pd.DataFrame, metrics: tuple[str, ...] = ("dsc", "hd95")) -> pd.DataFrame:
    """Spread of per-structure means across structures, per model and metric.

    Returns:
        Columns model, metric, n_structures, mean, std, iqr, q1, q3, min, max, worst_structure. ``std`` is NaN
        when fewer than two structures have a defined mean.
    """
    out = []
    for metric in metrics:
        means = structure_means(table, metric)
        for model, grp in means.groupby("model", sort=True):
            vals = grp.dropna(subset=["mean"])
            v = vals["mean"].to_numpy(dtype=float)
            if len(v) == 0:
                continue
            q1, q3 = np.percentile(v, [25, 75])
            higher_worse = canonical_metric(metric) not in ("dsc", "iou", "nsd", "sensitivity", "precision")
            worst = vals.sort_values("mean", ascending=not higher_worse).iloc[0]["structure"]
            out.append({"model": model, "metric": metric, "n_structures": len(v), "mean": float(v.mean()),
                        "std": float(np.std(v, ddof=1)) if len(v) > 1 else np.nan, "iqr": float(q3 - q1),
                        "q1": float(q1), "q3": float(q3), "min": float(v.min()), "max": float(v.max()),
                        "worst_structure": worst})
    cols = ["model", "metric", "n_structures", "mean", "std", "iqr", "q1", "q3", "min", "max", "worst_structure"]
    return pd.DataFrame(out, columns=cols)
