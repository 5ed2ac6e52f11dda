"""The self-contained HTML report of a cohort evaluation (plots embedded as base64 PNG, no external resources)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from organsegbench.report import plots
from organsegbench.report.gallery import gallery

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;
line-height:1.4;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}h3{font-size:1.05em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0}th,td{border:1px solid #ccc;padding:.2em .5em;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.9em}.warn{background:#fff4e5;border-left:4px solid #f0a030;padding:.4em .8em}
.gallery{display:flex;flex-wrap:wrap;gap:8px}.gallery figure{margin:0;width:170px;font-size:.7em}
.gallery img{width:160px;border:1px solid #ccc}.plots img{max-width:100%;margin:.3em 0}
.ba{display:flex;flex-wrap:wrap;gap:8px}.ba img{width:360px}
.scroll{max-height:420px;overflow:auto}code{background:#f3f3f3;padding:0 .2em}
"""

UNITS = {"hd": "mm", "hd95": "mm", "assd": "mm", "asd_ref_to_pred": "mm", "asd_pred_to_ref": "mm",
         "volume_ref": "mL", "volume_pred": "mL"}


def _table(df: pd.DataFrame | None, empty: str = "none", max_rows: int = 400, scroll: bool = False) -> str:
    if df is None or df.empty:
        return f"<p class='note'>{html.escape(empty)}</p>"
    more = f"<p class='note'>first {max_rows} of {len(df)} rows; all rows are in the CSV</p>" if len(df) > max_rows else ""
    body = df.head(max_rows).to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="–", escape=True,
                                     border=0)
    return (f"<div class='scroll'>{body}</div>" if scroll else body) + more


def esc_list(names: tuple[str, ...] | list[str]) -> str:
    """``a, b, c`` as escaped HTML code spans."""
    return ", ".join(f"<code>{html.escape(n)}</code>" for n in names)


def _img(uri: str, alt: str) -> str:
    return f"<img src='{uri}' alt='{html.escape(alt)}'>"


def _accuracy_pivot(acc: pd.DataFrame) -> pd.DataFrame:
    """mean ± SD per model x structure for the main metrics (one column per metric)."""
    main = [m for m in ("dsc", "nsd", "hd95", "assd", "volume_error_rate") if m in set(acc["metric"])]
    if not main:
        return acc
    a = acc[acc["metric"].isin(main)].copy()
    a["value"] = [f"{m:.3g} ± {s:.2g} (n={n})" if pd.notna(s) else (f"{m:.3g} (n={n})" if pd.notna(m) else "–")
                  for m, s, n in zip(a["mean"], a["std"], a["n"], strict=True)]
    p = a.pivot_table(index=["model", "structure"], columns="metric", values="value", aggfunc="first")
    p = p[[m for m in main if m in p.columns]]
    p.columns.name = None
    return p.reset_index()


#: case-table columns that are not subject attributes (or are analysed elsewhere: cardiac phenotypes)
_NOT_FAIRNESS_ATTRIBUTES = {"case", "image", "reference", "subject", "phase", "heart_rate", "heart_rate_source"}


def _untested_attributes_note(fair: pd.DataFrame | None, cases: pd.DataFrame | None) -> str:
    """Say which attributes were compared and which of the cohort's other attributes were not (and how to add them)."""
    tested = sorted(set(fair["attribute"])) if fair is not None and len(fair) else []
    others = [c for c in (cases.columns if cases is not None else [])
              if c not in _NOT_FAIRNESS_ATTRIBUTES and c not in tested]
    if not others:
        return ""
    return (f"<p class='note'>Attributes compared: {html.escape(', '.join(tested) or 'none')}. Other attributes of "
            f"the cohort, not compared: <b>{html.escape(', '.join(others))}</b> (add them with "
            f"<code>--attributes {html.escape(' '.join(tested + others))}</code>; numeric ones also need "
            "<code>--bands NAME=EDGES</code>).</p>")


def _fairness_section(analyses: dict[str, pd.DataFrame], cases: pd.DataFrame | None = None) -> str:
    fair, ov = analyses.get("fairness"), analyses.get("fairness_overall")
    metric = str(fair["metric"].iloc[0]) if fair is not None and "metric" in fair.columns and len(fair) else "dsc"
    note = _untested_attributes_note(fair, cases)
    if fair is None:
        if not note:
            return "<p class='note'>No subject attributes (sex, age, bmi, …) in the cohort: fairness not analysed.</p>"
        return ("<p class='note'>None of the default attributes (sex, age, bmi) is in the cohort: fairness not "
                "analysed.</p>" + note)
    parts = [f"<p>Per structure, <b>{html.escape(metric)}</b> is compared between groups with a one-way ANOVA "
             "and a Kruskal–Wallis test; p-values are Benjamini–Hochberg corrected across structures. <b>Overall fairness</b> = share "
             "of testable structures with no significant difference (1 = no group difference anywhere). Effect "
             "sizes: η² (ANOVA), ε² (Kruskal–Wallis). Groups with fewer than 2 cases are excluded and named; "
             "a structure with fewer than 2 testable groups is reported as <i>not testable</i>.</p>",
             note, _table(ov)]
    nt = fair[~fair["testable"].astype(bool)]
    if len(nt):
        from organsegbench.analysis.fairness import group_reasons

        n_struct = fair["structure"].nunique()
        items = "".join(
            f"<li>{html.escape(str(a))}: "
            f"{html.escape(group_reasons(g.drop_duplicates(['structure', 'reason']), n_struct))}</li>"
            for a, g in nt.groupby("attribute", sort=True))
        parts.append("<div class='warn'><b>Not testable</b> (no p-value, left out of overall fairness):"
                     f"<ul>{items}</ul></div>")
    cols = ["model", "attribute", "structure", "test", "testable", "group_sizes", "group_means", "excluded_groups",
            "n_missing_attribute", "n_out_of_band", "p", "p_fdr", "significant", "effect_size", "effect_size_name"]
    detail = fair[cols].copy()
    detail["significant"] = [("yes" if v else "no") if isinstance(v, bool | np.bool_) else "–"
                             for v in detail["significant"]]  # not testable: no test, not "None"
    rows_html = _table(detail, scroll=True)
    parts.append("<h3>All tests</h3>" + rows_html)
    return "\n".join(parts)


def _clinical_section(table: pd.DataFrame, analyses: dict[str, pd.DataFrame], cases: pd.DataFrame) -> str:
    from organsegbench.analysis import volumes_long

    parts = ["<h3>Volume error rate |V<sub>ref</sub> − V|/V<sub>ref</sub></h3>",
             _table(analyses.get("volume_error_summary"), "no volumes")]
    ba = analyses.get("bland_altman_volumes")
    if ba is not None and len(ba):
        parts += ["<h3>Bland–Altman of structure volumes (mL): bias and 95 % limits of agreement</h3>", _table(ba)]
        vols = volumes_long(table)
        ref_mean = vols[vols["model"] == "reference"].groupby("structure")["value"].mean()
        rel = ba.assign(rel=ba["bias"].abs() / ba["quantity"].map(ref_mean).replace(0, float("nan")))
        order = list(zip(*[rel.sort_values("rel", ascending=False)[c] for c in ("quantity", "model")], strict=True))
        parts.append("<p class='note'>Plots: the 12 structure × model pairs with the largest relative bias.</p>")
        figs = plots.bland_altman_figures(vols, key="case", quantity="structure",
                                          unit_of={s: "mL" for s in ba["quantity"]}, limit=12, order=order)
        parts.append("<div class='ba'>" + "".join(_img(u, t) for t, u in figs) + "</div>")
    ph = analyses.get("cardiac_phenotypes")
    if (ph is None or not len(ph)) and {"subject", "phase"} <= set(cases.columns):
        from organsegbench.analysis.clinical import LV_NAMES, RV_NAMES

        parts.append("<div class='warn'>Cases have <code>subject</code>/<code>phase</code> attributes but no cardiac "
                     "phenotypes could be computed: they need one ED and one ES case per subject and left/right "
                     f"ventricular cavity structures named {esc_list(LV_NAMES)} / {esc_list(RV_NAMES)} (give a "
                     "vocabulary that names them; use <code>--harmonise canonical</code>).</div>")
    if ph is not None and len(ph):
        src = ", ".join(sorted(set(ph["heart_rate_source"].astype(str))))
        parts += ["<h3>Cardiac phenotypes</h3>",
                  f"<p>LVEDV/LVESV/RVEDV/RVESV/LVSV/RVSV in mL, LVEF/RVEF in %, LVCO in L/min. Heart rate source: "
                  f"<b>{html.escape(src)}</b>.</p>",
                  _table(ph.pivot_table(index=["subject", "model"], columns="phenotype", values="value").reset_index()),
                  "<h3>Bland–Altman of phenotypes</h3>", _table(analyses.get("bland_altman_cardiac"))]
        units = dict(zip(ph["phenotype"], ph["unit"], strict=False))
        figs = plots.bland_altman_figures(ph, key="subject", quantity="phenotype", unit_of=units, limit=27)
        parts.append("<div class='ba'>" + "".join(_img(u, t) for t, u in figs) + "</div>")
    return "\n".join(parts)


def _absent_structures_note(table: pd.DataFrame) -> str:
    """Name the structures that no reference and no prediction contains (every value "both empty", e.g. one asked
    for with --structures that this cohort does not have): their rows are all undefined."""
    if "reason" not in table.columns or "structure" not in table.columns:
        return ""
    ok = table[table["status"] == "ok"] if "status" in table.columns else table
    ok = ok[~ok["metric"].astype(str).str.startswith("volume_")]  # volumes are 0 mL, not undefined
    both = ok["reason"].astype(str).eq("both empty").groupby(ok["structure"]).all()
    absent = sorted(str(s) for s, v in both.items() if v)
    if not absent:
        return ""
    return ("<div class='warn'>Structures absent from every reference and every prediction: "
            f"{html.escape(', '.join(absent))} (all their values are undefined; check the structure names and the "
            "label vocabularies).</div>")


def _unnamed_labels_note(table: pd.DataFrame, limit: int = 12) -> str:
    """Name the structures called ``label_<n>``: label values that the vocabulary given for that map does not name
    (often the wrong vocabulary, which also leaves the real structure empty)."""
    if "structure" not in table.columns:
        return ""
    rows = table[table["structure"].astype(str).str.fullmatch(r"label_\d+")][["structure", "case", "model"]]
    if rows.empty:
        return ""
    where = [f"{s} ({c} / {m})" for s, c, m in rows.drop_duplicates().itertuples(index=False)]
    more = f" and {len(where) - limit} more" if len(where) > limit else ""
    return ("<div class='warn'>Label values without a name in their vocabulary: "
            f"{html.escape(', '.join(where[:limit]))}{more}. Check the vocabularies given in the cohort file "
            "(vocab:&lt;model&gt;, vocab:reference).</div>")


def build_html(table: pd.DataFrame, cases: pd.DataFrame, analyses: dict[str, pd.DataFrame],
               summary: dict[str, Any]) -> str:
    """The report as one HTML string."""
    esc = html.escape
    s = summary
    title = f"OrganSegBench evaluation — {esc(str(s.get('name', 'cohort')))}"
    missing = s.get("missing_pairs") or []
    warn = ""
    if missing or s.get("errors"):
        items = "".join(f"<li>{esc(str(m['case']))} / {esc(str(m['model']))}: {esc(str(m['reason']))}</li>"
                        for m in missing[:50])
        errs = table[table["status"] == "error"][["case", "model", "reason"]].drop_duplicates()
        items += "".join(f"<li>{esc(str(r.case))} / {esc(str(r.model))}: error: {esc(str(r.reason))}</li>"
                         for r in errs.head(50).itertuples())
        warn = (f"<div class='warn'><b>{s.get('missing', 0)} missing and {s.get('errors', 0)} failed "
                f"case × model pairs</b> (left out of every statistic):<ul>{items}</ul></div>")
    warn += _absent_structures_note(table) + _unnamed_labels_note(table)
    metrics_present = [m for m in ("dsc", "hd95") if m in set(table["metric"])]
    dist = "".join(f"<h3>{esc(m)}</h3>" + "".join(_img(u, m) for u in plots.distribution_figures(
        table, m, UNITS.get(m, ""))) for m in metrics_present)
    worst = analyses.get("worst_cases")
    level = str((s.get("options") or {}).get("harmonise", "harmonised"))
    galleries = []
    for metric, limit in (("dsc", 24), ("hd95", 12)):
        thumbs = gallery(worst, table, cases, metric=metric, limit=limit, level=level) \
            if worst is not None and len(worst) else []
        figs = "".join(
            f"<figure>{_img(t['uri'], t['title']) if t['uri'] else ''}<figcaption>{esc(t['title'])}"
            f"{'<br><i>' + esc(t['error']) + '</i>' if t['error'] else ''}</figcaption></figure>" for t in thumbs)
        if figs:
            galleries.append(f"<h4>by {metric}</h4><div class='gallery'>{figs}</div>")
    gal = "".join(galleries)
    prov = json.dumps(s.get("provenance", {}), indent=1, default=str)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{CSS}</style></head><body>
<h1>{title}</h1>
<p>{s.get('n_cases')} cases, models: <b>{esc(', '.join(s.get('models', [])))}</b>,
{len(s.get('structures', []))} structures. Evaluated this run: {s.get('evaluated')}, reused from cache:
{s.get('cached')}. Case × model pairs: {s.get('case_model_pairs')} ({s.get('ok')} ok, {s.get('missing')} missing,
{s.get('errors')} failed).</p>{warn}
<p class='note'>Units: Dice (DSC), NSD, IoU unitless (0–1, higher is better); HD, HD95, ASSD in mm (lower is better);
volumes in mL. The full tidy table is <code>results.csv</code> / <code>results.parquet</code>; every table below is also
a CSV in <code>analysis/</code>.</p>
<h2>1. Accuracy</h2>{_table(_accuracy_pivot(analyses['accuracy']), scroll=True)}
<div class='plots'>{dist}</div>
<h2>2. Robustness: worst 5 % of cases</h2>
<p>Per model and structure the worst n = max(1, ⌊0.05·N⌋) cases by DSC (lowest) and HD95 (highest).
<code>n_undefined</code> counts cases whose value is undefined (e.g. HD95 with an empty mask).</p>
{_table(worst, scroll=True)}
<h3>Worst-case gallery</h3><p class='note'>Green: reference contour; red: prediction contour; slice where the
reference structure is largest; radiological display (anterior up, patient's right on the left).</p>
{gal or "<p class='note'>none</p>"}
<h2>3. Fairness</h2>{_fairness_section(analyses, cases)}
<h2>4. Generalisation across structures</h2>
<p>Standard deviation and interquartile range of the per-structure mean across structures (small = even
performance across anatomy).</p>{_table(analyses.get('generalisation'))}
<h2>5. Clinical utility</h2>{_clinical_section(table, analyses, cases)}
<h2>Provenance</h2><p>Options: <code>{esc(json.dumps(s.get('options', {}), default=str))}</code>; scheduler:
{esc(str(s.get('scheduler')))}; cohort file: <code>{esc(str(s.get('cohort')))}</code>.</p>
<pre class='note'>{esc(prov)}</pre>
</body></html>
"""


def write_report(path: str | Path, table: pd.DataFrame, cases: pd.DataFrame, analyses: dict[str, pd.DataFrame],
                 summary: dict[str, Any]) -> Path:
    """Write the self-contained ``report.html``; returns its path."""
    p = Path(path)
    p.write_text(build_html(table, cases, analyses, summary), encoding="utf-8")
    return p
