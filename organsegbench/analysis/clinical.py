"""Clinical utility: volume error rate, cardiac phenotypes and Bland-Altman agreement.

Units: volumes in mL, stroke volume in mL, ejection fraction in %, cardiac output in L/min, heart rate in beats
per minute (bpm).

* Volume error rate (VER) of a structure = |V_ref - V_pred| / V_ref (unitless; NaN when V_ref = 0).
* Cardiac phenotypes from the left/right ventricular cavity volumes at end-diastole (ED) and end-systole (ES):
  LVEDV, LVESV, RVEDV, RVESV (mL); LVSV = LVEDV - LVESV, RVSV = RVEDV - RVESV (mL); LVEF = 100 LVSV / LVEDV,
  RVEF = 100 RVSV / RVEDV (%); LVCO = LVSV x HR / 1000 (L/min).
* The heart rate is either given or read from the image header: DICOM HeartRate (0018,1088) in bpm, else derived
  from NominalInterval (0018,1062) (the R-R interval in ms) as 60000 / interval. The source is always reported.
* Bland-Altman: differences d = test - reference; bias = mean(d); limits of agreement = bias +- 1.96 SD(d)
  (sample SD, ddof = 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from organsegbench.analysis._common import REFERENCE_MODEL, metric_rows

PHENOTYPE_UNITS = {"LVEDV": "mL", "LVESV": "mL", "RVEDV": "mL", "RVESV": "mL", "LVSV": "mL", "RVSV": "mL",
                   "LVEF": "%", "RVEF": "%", "LVCO": "L/min"}
#: harmonised structure names accepted as the left / right ventricular cavity (first one present wins)
LV_NAMES = ("heart_ventricle_left", "left_ventricle", "lv", "LV")
RV_NAMES = ("heart_ventricle_right", "right_ventricle", "rv", "RV")


# ----------------------------------------------------------------------------------------------- volume error
def volumes_long(table: pd.DataFrame) -> pd.DataFrame:
    """Structure volumes (mL) as rows case, model, structure, value; model ``reference`` holds the reference.

    Read from the metric rows ``volume_ref`` / ``volume_pred`` (one pair per case x model x structure) and, when
    present, from ``volume_ml`` rows that already carry the model (``reference`` for the reference).
    """
    cols = ["case", "model", "structure", "value"]
    parts = []
    ref = metric_rows(table, "volume_ref")
    if len(ref):
        ref = ref.drop_duplicates(["case", "structure"]).assign(model=REFERENCE_MODEL)
        parts.append(ref[cols])
    pred = metric_rows(table, "volume_pred")
    if len(pred):
        parts.append(pred[cols])
    ml = metric_rows(table, "volume_ml")
    if len(ml):
        parts.append(ml[cols])
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    out["value"] = pd.to_numeric(out["value"], errors="coerce")
    out["case"] = out["case"].astype(str)
    return out.drop_duplicates(["case", "model", "structure"]).reset_index(drop=True)


def volume_error(table: pd.DataFrame) -> pd.DataFrame:
    """Per case x model x structure volume error rate |V_ref - V| / V_ref (NaN when V_ref = 0).

    Computed from the volumes (:func:`volumes_long`) when present, else taken from the table's
    ``volume_error_rate`` metric. Returns columns case, model, structure, ref_volume_ml, volume_ml,
    volume_error_rate.
    """
    vols = volumes_long(table)
    cols = ["case", "model", "structure", "ref_volume_ml", "volume_ml", "volume_error_rate"]
    if len(vols):
        ref = vols[vols["model"] == REFERENCE_MODEL][["case", "structure", "value"]]
        pred = vols[vols["model"] != REFERENCE_MODEL]
        m = pred.merge(ref.rename(columns={"value": "ref_volume_ml"}), on=["case", "structure"], how="inner")
        m = m.rename(columns={"value": "volume_ml"})
        with np.errstate(divide="ignore", invalid="ignore"):
            ver = np.abs(m["ref_volume_ml"] - m["volume_ml"]) / m["ref_volume_ml"]
        m["volume_error_rate"] = ver.where(m["ref_volume_ml"] > 0, np.nan)
        return m[cols].reset_index(drop=True)
    ver = metric_rows(table, "volume_error_rate")
    ver = ver.assign(ref_volume_ml=np.nan, volume_ml=np.nan,
                     volume_error_rate=pd.to_numeric(ver["value"], errors="coerce"))
    return ver[cols].reset_index(drop=True)


def volume_error_summary(ver: pd.DataFrame) -> pd.DataFrame:
    """Mean, median, SD and count of the volume error rate per model x structure (NaN skipped)."""
    g = ver.groupby(["model", "structure"])["volume_error_rate"]
    return pd.DataFrame({"mean": g.mean(), "median": g.median(), "std": g.std(), "n": g.count()}).reset_index()


# ----------------------------------------------------------------------------------------------- heart rate
def _tag_value(header: Any, keyword: str, tag_key: str) -> float | None:
    """A numeric header field by DICOM keyword or SimpleITK ``gggg|eeee`` key, else None."""
    val = None
    if isinstance(header, Mapping):
        val = header.get(keyword, header.get(tag_key, header.get(tag_key.upper())))
    elif header is not None:
        val = getattr(header, keyword, None)
    try:
        out = float(str(val).strip()) if val not in (None, "") else None
    except ValueError:
        return None
    return out if out is not None and math.isfinite(out) and out > 0 else None


def read_header(path: str | Path) -> Any:
    """The header of an image file or DICOM folder: a pydicom dataset for DICOM, else SimpleITK's metadata dict."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        path = files[0] if files else path
    try:
        import pydicom

        return pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception:  # not DICOM: fall back to the header keys SimpleITK exposes (NRRD/NIfTI)
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            return {}
        return {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}


def heart_rate_from_header(header: Any) -> tuple[float, str]:
    """Heart rate (bpm) and its source from a header (pydicom dataset, metadata mapping, or a path to read).

    Returns ``(nan, "unavailable: …")`` when neither HeartRate nor NominalInterval is present.
    """
    if isinstance(header, str | Path):
        header = read_header(header)
    hr = _tag_value(header, "HeartRate", "0018|1088")
    if hr is not None:
        return hr, "DICOM HeartRate (0018,1088)"
    interval = _tag_value(header, "NominalInterval", "0018|1062")
    if interval is not None:
        return 60000.0 / interval, f"derived from DICOM NominalInterval (0018,1062) = {interval:g} ms"
    return math.nan, "unavailable: no HeartRate (0018,1088) or NominalInterval (0018,1062) in the header"


def resolve_heart_rate(given: float | None = None, header: Any = None) -> tuple[float, str]:
    """The heart rate to use (bpm) and where it came from: ``given`` wins, else the header."""
    if given is not None and not (isinstance(given, float) and math.isnan(given)):
        return float(given), "given"
    if header is None:
        return math.nan, "unavailable: no heart rate given and no image header"
    return heart_rate_from_header(header)


# ----------------------------------------------------------------------------------------------- phenotypes
def cardiac_phenotypes(lvedv: float, lvesv: float, rvedv: float, rvesv: float,
                       heart_rate_bpm: float | None = None) -> dict[str, float]:
    """LV/RV volumes (mL), stroke volumes (mL), ejection fractions (%) and LV cardiac output (L/min).

    LVCO is NaN when the heart rate is unknown; EFs are NaN when the end-diastolic volume is 0.
    """
    lvsv, rvsv = lvedv - lvesv, rvedv - rvesv
    hr = math.nan if heart_rate_bpm is None else float(heart_rate_bpm)
    return {"LVEDV": lvedv, "LVESV": lvesv, "RVEDV": rvedv, "RVESV": rvesv, "LVSV": lvsv, "RVSV": rvsv,
            "LVEF": 100.0 * lvsv / lvedv if lvedv > 0 else math.nan,
            "RVEF": 100.0 * rvsv / rvedv if rvedv > 0 else math.nan,
            "LVCO": lvsv * hr / 1000.0}


def cardiac_phenotypes_from_labelmaps(ed: Any, es: Any, lv_label: int, rv_label: int,
                                      heart_rate_bpm: float | None = None, header: Any = None) -> dict[str, Any]:
    """Phenotypes from ED and ES label maps (:class:`~organsegbench.io.Image`) holding LV/RV cavity labels.

    Volumes are voxel counts x voxel volume (mL) on each frame's own grid. The result adds ``heart_rate_bpm``
    and ``heart_rate_source`` (given / DICOM HeartRate / derived from NominalInterval / unavailable).
    """
    def vol(img: Any, label: int) -> float:
        return float(np.count_nonzero(np.asarray(img.array) == label)) * img.voxel_volume_ml

    hr, source = resolve_heart_rate(heart_rate_bpm, header)
    ph = cardiac_phenotypes(vol(ed, lv_label), vol(es, lv_label), vol(ed, rv_label), vol(es, rv_label), hr)
    return {**ph, "heart_rate_bpm": hr, "heart_rate_source": source}


def _pick(names: Sequence[str], available: set[str]) -> str | None:
    return next((n for n in names if n in available), None)


def cohort_cardiac_phenotypes(table: pd.DataFrame, cases: pd.DataFrame, lv_names: Sequence[str] = LV_NAMES,
                              rv_names: Sequence[str] = RV_NAMES) -> pd.DataFrame:
    """Phenotypes per subject x model (``reference`` included) from a cohort's volumes (:func:`volumes_long`).

    ``cases`` needs columns case, subject, phase (``ED``/``ES``, case-insensitive) and optionally heart_rate
    (bpm) and heart_rate_source. Returns a long table: subject, model, phenotype, value, unit, heart_rate_bpm,
    heart_rate_source, reason. Empty when the cohort has no ED/ES pairs or no LV/RV cavity structure.
    """
    cols = ["subject", "model", "phenotype", "value", "unit", "heart_rate_bpm", "heart_rate_source", "reason"]
    if not {"subject", "phase"} <= set(cases.columns):
        return pd.DataFrame(columns=cols)
    vols = volumes_long(table)
    structures = set(vols["structure"].astype(str))
    lv, rv = _pick(lv_names, structures), _pick(rv_names, structures)
    if lv is None or rv is None:
        return pd.DataFrame(columns=cols)
    c = cases.assign(case=cases["case"].astype(str), phase=cases["phase"].astype(str).str.upper())
    out = []
    for subject, sc in c.groupby("subject", sort=True):
        ed, es = sc[sc["phase"] == "ED"], sc[sc["phase"] == "ES"]
        if len(ed) != 1 or len(es) != 1:
            continue
        ed_case, es_case = ed["case"].iloc[0], es["case"].iloc[0]
        given = _first_number(sc.get("heart_rate"))
        src = next((str(s) for s in sc.get("heart_rate_source", pd.Series(dtype=object)).dropna() if s), None)
        hr = math.nan if given is None else given
        hr_source = src or ("given" if given is not None else "unavailable: no heart_rate attribute or header")
        for model, mv in vols[vols["case"].isin([ed_case, es_case])].groupby("model"):
            def v(case: str, structure: str, mv: pd.DataFrame = mv) -> float:
                s = mv[(mv["case"] == case) & (mv["structure"] == structure)]["value"]
                return float(s.iloc[0]) if len(s) else math.nan
            ph = cardiac_phenotypes(v(ed_case, lv), v(es_case, lv), v(ed_case, rv), v(es_case, rv), hr)
            for name, value in ph.items():
                reason = "no heart rate" if name == "LVCO" and math.isnan(hr) else ""
                out.append({"subject": subject, "model": model, "phenotype": name, "value": value,
                            "unit": PHENOTYPE_UNITS[name], "heart_rate_bpm": hr, "heart_rate_source": hr_source,
                            "reason": reason})
    return pd.DataFrame(out, columns=cols)


def _first_number(values: pd.Series | None) -> float | None:
    if values is None:
        return None
    nums = pd.to_numeric(values, errors="coerce").dropna()
    return float(nums.iloc[0]) if len(nums) else None


# ----------------------------------------------------------------------------------------------- Bland-Altman
def bland_altman(reference: Sequence[float], test: Sequence[float]) -> dict[str, float]:
    """Bias and 95 % limits of agreement of ``test`` against ``reference`` (pairs with a NaN are skipped)."""
    r, t = np.asarray(reference, dtype=float), np.asarray(test, dtype=float)
    ok = np.isfinite(r) & np.isfinite(t)
    d = t[ok] - r[ok]
    n = int(d.size)
    bias = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    return {"n": n, "bias": bias, "sd": sd, "loa_lower": bias - 1.96 * sd, "loa_upper": bias + 1.96 * sd}


def bland_altman_table(long: pd.DataFrame, key: str, quantity: str, unit_col: str | None = None) -> pd.DataFrame:
    """Bland-Altman of every model against ``reference`` per ``quantity`` value.

    Args:
        long: rows with columns ``key`` (pairing id, e.g. subject or case), model, ``quantity`` (e.g. phenotype
            or structure) and value.
    Returns columns quantity, model, n, bias, sd, loa_lower, loa_upper (+ unit).
    """
    out = []
    ref = long[long["model"] == REFERENCE_MODEL]
    for (q, model), grp in long[long["model"] != REFERENCE_MODEL].groupby([quantity, "model"], sort=True):
        m = grp.merge(ref[ref[quantity] == q][[key, "value"]], on=key, suffixes=("", "_ref"))
        row = {"quantity": q, "model": model, **bland_altman(m["value_ref"], m["value"])}
        if unit_col:
            row["unit"] = grp[unit_col].iloc[0]
        out.append(row)
    return pd.DataFrame(out, columns=["quantity", "model", "n", "bias", "sd", "loa_lower", "loa_upper"]
                        + (["unit"] if unit_col else []))


def bland_altman_plot(reference: Sequence[float], test: Sequence[float], title: str = "", unit: str = "",
                      ax: Any = None) -> Any:
    """Bland-Altman scatter (mean of the pair vs difference) with bias and limits of agreement; returns the
    matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    r, t = np.asarray(reference, dtype=float), np.asarray(test, dtype=float)
    ok = np.isfinite(r) & np.isfinite(t)
    ba = bland_altman(r, t)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 3.2), dpi=90)
    else:
        fig = ax.figure
    ax.scatter((r[ok] + t[ok]) / 2, t[ok] - r[ok], s=14, alpha=0.8)
    u = f" ({unit})" if unit else ""
    lines = [(ba["bias"], "-", "bias")]
    if math.isfinite(ba["sd"]) and ba["sd"] > 0:  # limits coincide with the bias when every difference is equal
        lines += [(ba["loa_lower"], "--", "-1.96 SD"), (ba["loa_upper"], "--", "+1.96 SD")]
    for y, style, lab in lines:
        if math.isfinite(y):
            ax.axhline(y, linestyle=style, color="tab:red" if lab == "bias" else "grey", linewidth=1)
            ax.annotate(f"{lab} {y:.3g}", (1.0, y), xycoords=("axes fraction", "data"), ha="right",
                        va="bottom", fontsize=7)
    ax.set_xlabel(f"mean of reference and model{u}")
    ax.set_ylabel(f"model - reference{u}")
    ax.set_title(title or f"Bland-Altman (n={ba['n']})", fontsize=9)
    fig.tight_layout()
    return fig
