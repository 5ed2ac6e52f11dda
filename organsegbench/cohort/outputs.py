"""Everything a cohort run writes: tidy table (CSV + Parquet), case attributes, analysis tables, summary, report."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from organsegbench.cohort.schema import Cohort

log = logging.getLogger(__name__)


def case_table(cohort: Cohort) -> pd.DataFrame:
    """One row per case: id, image, reference, attributes; plus heart_rate (bpm) and heart_rate_source for cardiac
    cases (attribute ``phase``): the given ``heart_rate`` attribute, else the image header's timing fields."""
    from organsegbench.analysis.clinical import heart_rate_from_header

    rows = []
    for c in cohort.cases:
        row: dict[str, Any] = {"case": c.id, "image": str(c.image or ""), "reference": str(c.reference),
                               **c.attributes}
        if "phase" in c.attributes or "heart_rate" in c.attributes:
            hr = pd.to_numeric(pd.Series([c.attributes.get("heart_rate")]), errors="coerce").iloc[0]
            if pd.notna(hr):
                row["heart_rate"], row["heart_rate_source"] = float(hr), "given"
            elif c.image is not None and Path(c.image).exists():
                row["heart_rate"], row["heart_rate_source"] = heart_rate_from_header(c.image)
            else:
                row["heart_rate"], row["heart_rate_source"] = math.nan, "unavailable: no heart_rate and no image"
        rows.append(row)
    return pd.DataFrame(rows)


def accuracy_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, median, SD, defined count and undefined count per model x structure x metric (status ok rows)."""
    ok = table[(table["status"] == "ok") & (table["metric"] != "")].copy()
    ok["value"] = pd.to_numeric(ok["value"], errors="coerce")
    g = ok.groupby(["model", "structure", "metric"], sort=True)["value"]
    out = pd.DataFrame({"mean": g.mean(), "median": g.median(), "std": g.std(), "n": g.count(),
                        "n_undefined": g.apply(lambda v: int(v.isna().sum()))})
    return out.reset_index()


def run_analyses(table: pd.DataFrame, cases: pd.DataFrame, bands: dict[str, list[float]] | None = None,
                 attributes: list[str] | None = None, alpha: float = 0.05, fairness_metric: str = "dsc"
                 ) -> dict[str, pd.DataFrame]:
    """All analysis tables of a cohort, by name (empty tables are kept so the report can say "none")."""
    from organsegbench import analysis as A

    res: dict[str, pd.DataFrame] = {"accuracy": accuracy_summary(table), "worst_cases": A.worst_cases(table),
                                    "generalisation": A.generalisation(table)}
    if attributes is None:
        from organsegbench.analysis.fairness import DEFAULT_ATTRIBUTES

        present = [a for a in DEFAULT_ATTRIBUTES if a in cases.columns]
    else:
        present = list(attributes)
    if present:
        fair = A.fairness(table, cases, metric=fairness_metric, attributes=present, bands=bands, alpha=alpha)
        res["fairness"], res["fairness_overall"] = fair, A.overall_fairness(fair)
    ver = A.volume_error(table)
    res["volume_error"], res["volume_error_summary"] = ver, A.volume_error_summary(ver)
    vols = A.volumes_long(table)
    if len(vols):
        res["bland_altman_volumes"] = A.bland_altman_table(vols, key="case", quantity="structure")
    ph = A.cohort_cardiac_phenotypes(table, cases)
    if len(ph):
        res["cardiac_phenotypes"] = ph
        res["bland_altman_cardiac"] = A.bland_altman_table(ph, key="subject", quantity="phenotype",
                                                           unit_col="unit")
    return res


def _counts(table: pd.DataFrame) -> dict[str, int]:
    per_pair = table.groupby(["case", "model"])["status"].agg(lambda s: s.iloc[0])
    return {"pairs": len(per_pair), "ok": int((per_pair == "ok").sum()),
            "missing": int((per_pair == "missing").sum()), "errors": int((per_pair == "error").sum())}


def write_outputs(cohort: Cohort, table: pd.DataFrame, out: Path, options: Any, evaluated: int, cached: int,
                  scheduler: str | None, workers: int, report: bool = True,
                  bands: dict[str, list[float]] | None = None, attributes: list[str] | None = None,
                  alpha: float = 0.05, fairness_metric: str = "dsc") -> Any:
    """Write results.csv/.parquet, cases.csv, analysis/*.csv, summary.json and report.html; return a CohortRun."""
    from organsegbench.cohort.runner import CohortRun, summary_json
    from organsegbench.provenance import provenance

    table.to_csv(out / "results.csv", index=False)
    table.to_parquet(out / "results.parquet", index=False)
    cases = case_table(cohort)
    cases.to_csv(out / "cases.csv", index=False)
    analyses = run_analyses(table, cases, bands=bands, attributes=attributes, alpha=alpha,
                            fairness_metric=fairness_metric)
    (out / "analysis").mkdir(exist_ok=True)
    for name, df in analyses.items():
        df.to_csv(out / "analysis" / f"{name}.csv", index=False)
    counts = _counts(table)
    missing = table[table["status"] == "missing"][["case", "model", "reason"]].drop_duplicates()
    summary = {
        "cohort": str(cohort.path), "name": cohort.name, "n_cases": len(cohort.cases), "models": cohort.models,
        "structures": sorted(s for s in table["structure"].unique() if s),
        "evaluated": evaluated, "cached": cached, "case_model_pairs": counts["pairs"], "ok": counts["ok"],
        "missing": counts["missing"], "errors": counts["errors"],
        "missing_pairs": missing.to_dict("records"),
        "options": dataclasses.asdict(options), "scheduler": scheduler or "local processes",
        "workers": workers, "analysis_tables": sorted(analyses),
        "provenance": provenance(command="organsegbench evaluate", cohort=str(cohort.path)),
    }
    if report:
        from organsegbench.report import write_report

        summary["report"] = str(write_report(out / "report.html", table, cases, analyses, summary))
    summary_json(out / "summary.json", _clean(summary))
    return CohortRun(table=table, cases=cases, analyses=analyses, summary=summary, out_dir=out)


def _clean(obj: Any) -> Any:
    """JSON-safe copy (NaN -> None, numpy scalars -> Python)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
