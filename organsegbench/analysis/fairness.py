"""Fairness: does a model's accuracy differ between subject groups (sex, age band, BMI band, …)?

For every model, attribute and structure the per-case values of one metric (Dice, ``dsc``, by default) are split by group and
tested with a one-way ANOVA (:func:`scipy.stats.f_oneway`) and a Kruskal-Wallis H test
(:func:`scipy.stats.kruskal`). p-values are corrected with Benjamini-Hochberg across structures (per model,
attribute and test; :func:`statsmodels.stats.multitest.multipletests`). Effect sizes:

* eta squared (ANOVA) = SS_between / SS_total;
* epsilon squared (Kruskal-Wallis) = H / ((n^2 - 1) / (n + 1)) = H / (n - 1), n = number of values tested.

Groups with fewer than two values are left out of the test and named in ``excluded_groups``; when fewer than two
groups remain (or all values are identical) the row says ``testable = False`` with the ``reason``. The seed's
"overall fairness" is the share of testable structures with no significant difference after FDR correction.

Numeric attributes are binned into bands (left-closed intervals ``[lo, hi)``, the last band closed on both sides
when its upper edge is finite): age 20-30/30-40/40-50/50-60 years and BMI <21, 21-24, >=24 kg/m^2 by default.
Cases whose value lies outside every band are left out of the test and counted in ``n_out_of_band``; cases
without a value in ``n_missing_attribute``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from organsegbench.analysis._common import canonical_metric, metric_rows, require_columns
from organsegbench.errors import ConfigError

#: default band edges per numeric attribute (years; kg/m^2)
DEFAULT_BANDS: dict[str, list[float]] = {
    "age": [20, 30, 40, 50, 60],
    "bmi": [-math.inf, 21, 24, math.inf],
}
#: attributes analysed by default when present in the case table
DEFAULT_ATTRIBUTES = ("sex", "age", "bmi")

TESTS = ("anova", "kruskal")


def band_labels(edges: Sequence[float]) -> list[str]:
    """Human-readable labels of the bands between ``edges`` (``<21``, ``21–24``, ``>=24``, ``20–30``)."""
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if math.isinf(lo):
            labels.append(f"<{hi:g}")
        elif math.isinf(hi):
            labels.append(f">={lo:g}")
        else:
            labels.append(f"{lo:g}–{hi:g}")
    return labels


def assign_groups(values: pd.Series, edges: Sequence[float] | None = None) -> pd.Series:
    """Group label per value: the band for numeric attributes with ``edges``, else the value itself as text.

    Values outside all bands and missing values become NaN.
    """
    if edges is None:
        return values.map(lambda v: None if pd.isna(v) else str(v).strip()).astype(object)
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
        raise ConfigError(f"band edges must be increasing and at least two: {edges}",
                          hint="give edges such as 20,30,40,50,60")
    nums = pd.to_numeric(values, errors="coerce")
    labels = band_labels(edges)
    out = pd.Series([None] * len(nums), index=values.index, dtype=object)
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = i == len(labels) - 1
        in_band = (nums >= lo) & ((nums <= hi) if (last and math.isfinite(hi)) else (nums < hi))
        out[in_band & out.isna()] = labels[i]
    return out


def eta_squared(groups: Sequence[np.ndarray]) -> float:
    """Eta squared of a one-way layout: between-group sum of squares over total sum of squares."""
    allv = np.concatenate(groups)
    grand = allv.mean()
    ss_total = float(((allv - grand) ** 2).sum())
    ss_between = float(sum(len(g) * (g.mean() - grand) ** 2 for g in groups))
    return ss_between / ss_total if ss_total > 0 else math.nan


def epsilon_squared(h: float, n: int) -> float:
    """Epsilon squared of a Kruskal-Wallis test: ``H / ((n^2 - 1) / (n + 1))``."""
    return float(h) * (n + 1) / (n * n - 1) if n > 1 else math.nan


def _test_one(groups: dict[str, np.ndarray]) -> dict:
    """Run both tests on ``groups`` (label -> values); explains when they cannot run."""
    sizes = {k: len(v) for k, v in groups.items()}
    usable = {k: v for k, v in groups.items() if len(v) >= 2}
    excluded = sorted(k for k in groups if k not in usable)
    base = {"n_groups": len(usable), "group_sizes": "; ".join(f"{k}={sizes[k]}" for k in sorted(sizes)),
            "group_means": "; ".join(f"{k}={np.mean(v):.4g}" for k, v in sorted(groups.items()) if len(v)),
            "excluded_groups": ", ".join(f"{k} (n={sizes[k]})" for k in excluded),
            "n": int(sum(len(v) for v in usable.values()))}
    results = {}
    if len(usable) < 2:
        why = (f"fewer than 2 groups with n >= 2 (groups: {base['group_sizes'] or 'none'})")
        return {t: {**base, "testable": False, "reason": why} for t in TESTS}
    arrays = [usable[k] for k in sorted(usable)]
    if np.ptp(np.concatenate(arrays)) == 0:
        return {t: {**base, "testable": False, "reason": "all values identical (no variance to test)"}
                for t in TESTS}
    f = stats.f_oneway(*arrays)
    results["anova"] = {**base, "testable": True, "reason": "", "statistic": float(f.statistic),
                        "p": float(f.pvalue), "effect_size": eta_squared(arrays), "effect_size_name": "eta2"}
    h = stats.kruskal(*arrays)
    results["kruskal"] = {**base, "testable": True, "reason": "", "statistic": float(h.statistic),
                          "p": float(h.pvalue), "effect_size": epsilon_squared(h.statistic, base["n"]),
                          "effect_size_name": "epsilon2"}
    return results


def fairness(table: pd.DataFrame, cases: pd.DataFrame, metric: str = "dsc",
             attributes: Sequence[str] | None = None, bands: dict[str, Sequence[float]] | None = None,
             alpha: float = 0.05) -> pd.DataFrame:
    """Group-difference tests per model x attribute x structure x test.

    Args:
        table: tidy long table (case, model, structure, metric, value, …).
        cases: one row per case: column ``case`` plus attribute columns (sex, age, bmi, …).
        metric: the metric compared between groups (``dsc``, i.e. Dice, by default).
        attributes: attribute columns to analyse; default: those of :data:`DEFAULT_ATTRIBUTES` present.
        bands: band edges per numeric attribute, merged over :data:`DEFAULT_BANDS`; attributes without edges are
            categorical.
        alpha: significance level applied to the FDR-corrected p-values.

    Returns:
        Columns model, attribute, structure, test, metric, testable, reason, n, n_groups, group_sizes, group_means,
        excluded_groups, n_missing_attribute, n_out_of_band, statistic, p, p_fdr, significant, effect_size,
        effect_size_name.
    """
    require_columns(cases, ("case",), "case table")
    bands = {**DEFAULT_BANDS, **(bands or {})}
    if attributes is None:
        attributes = [a for a in DEFAULT_ATTRIBUTES if a in cases.columns]
    missing = [a for a in attributes if a not in cases.columns]
    if missing:
        from organsegbench.errors import close_matches

        hints = {a: close_matches(a, [str(c) for c in cases.columns if c != "case"]) for a in missing}
        raise ConfigError(f"attribute(s) {missing} not in the cohort's case attributes",
                          hint="; ".join(f"{a}: did you mean {m}?" if m else f"{a}: no similar attribute"
                                         for a, m in hints.items()))
    rows = metric_rows(table, metric)
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    rows = rows[np.isfinite(rows["value"])]
    out = []
    for attribute in attributes:
        numeric = _is_numeric(cases[attribute])
        unbanded = numeric and attribute not in bands
        groups_of = assign_groups(cases[attribute], bands.get(attribute) if numeric else None)
        group_map = dict(zip(cases["case"].astype(str), groups_of, strict=True))
        present = {str(c) for c, v in zip(cases["case"], cases[attribute], strict=True) if not _is_missing(v)}
        for (model, structure), grp in rows.groupby(["model", "structure"], sort=True):
            g = grp["case"].astype(str).map(group_map)
            n_missing = int((~grp["case"].astype(str).isin(present)).sum())
            n_out_of_band = int(g.isna().sum()) - n_missing
            groups = {str(k): grp.loc[g == k, "value"].to_numpy(float) for k in sorted(g.dropna().unique())}
            for test, res in _test_one(groups).items():
                if not res["testable"] and unbanded:
                    res["reason"] += (f"; {attribute!r} is numeric without band edges, so every value is its own "
                                      "group: give band edges (bands=..., CLI --bands ATTR=EDGES)")
                out.append({"model": model, "attribute": attribute, "structure": structure, "test": test,
                            "metric": canonical_metric(metric), "n_missing_attribute": n_missing,
                            "n_out_of_band": n_out_of_band, **res})
    cols = ["model", "attribute", "structure", "test", "metric", "testable", "reason", "n", "n_groups", "group_sizes",
            "group_means", "excluded_groups", "n_missing_attribute", "n_out_of_band", "statistic", "p", "p_fdr",
            "significant", "effect_size", "effect_size_name"]
    df = pd.DataFrame(out, columns=cols)
    return _apply_fdr(df, alpha)


def _is_missing(value: object) -> bool:
    """True for an absent attribute value (None, NaN, empty text)."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value))) or str(value).strip() == ""


def _is_numeric(values: pd.Series) -> bool:
    """True when every non-missing value parses as a number."""
    v = values.dropna()
    return len(v) > 0 and bool(pd.to_numeric(v, errors="coerce").notna().all())


def _apply_fdr(df: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Benjamini-Hochberg across structures within each model x attribute x test (testable rows only)."""
    from statsmodels.stats.multitest import multipletests

    df = df.copy()
    df["p_fdr"] = np.nan
    df["significant"] = pd.Series([None] * len(df), dtype=object)
    for _, grp in df[df["testable"].astype(bool)].groupby(["model", "attribute", "test"]):
        reject, p_adj, _, _ = multipletests(grp["p"].to_numpy(float), alpha=alpha, method="fdr_bh")
        df.loc[grp.index, "p_fdr"] = p_adj
        df.loc[grp.index, "significant"] = reject.astype(bool)
    return df


def group_reasons(rows: pd.DataFrame, n_structures: int | None = None, max_names: int = 8) -> str:
    """Not-testable structures grouped by their reason: ``"liver, spleen: <reason>; kidney_left: <other>"``, or
    ``"all 39 structures: <reason>"`` when one reason covers all ``n_structures`` (an attribute with one group), so
    the table reads as sentences instead of the same reason repeated for every structure."""
    parts = []
    for reason, grp in rows.groupby("reason", sort=True):
        names = sorted(grp["structure"].astype(str).unique())
        if n_structures is not None and len(names) == n_structures > 1:
            shown = f"all {n_structures} structures"
        else:
            shown = ", ".join(names[:max_names]) + (f" and {len(names) - max_names} more"
                                                    if len(names) > max_names else "")
        parts.append(f"{shown}: {reason}")
    return "; ".join(parts)


def overall_fairness(fair: pd.DataFrame) -> pd.DataFrame:
    """The seed's overall fairness per model x attribute x test: share of testable structures without a
    significant group difference (after FDR), with the counts and the not-testable structures named."""
    out = []
    for (model, attribute, test), grp in fair.groupby(["model", "attribute", "test"], sort=True):
        testable = grp[grp["testable"].astype(bool)]
        n_sig = int(testable["significant"].astype(bool).sum())
        not_testable = grp[~grp["testable"].astype(bool)]
        out.append({"model": model, "attribute": attribute, "test": test, "n_structures": len(grp),
                    "n_testable": len(testable), "n_significant": n_sig,
                    "overall_fairness": (len(testable) - n_sig) / len(testable) if len(testable) else np.nan,
                    "not_testable": group_reasons(not_testable, grp["structure"].nunique()),
                    "status": "ok" if len(testable) else "not testable"})
    cols = ["model", "attribute", "test", "n_structures", "n_testable", "n_significant", "overall_fairness",
            "not_testable", "status"]
    return pd.DataFrame(out, columns=cols)
