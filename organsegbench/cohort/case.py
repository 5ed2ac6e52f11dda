"""Evaluation of one cohort case: read the reference and every prediction, harmonise structure names, align grids,
compute the metrics and return tidy rows. Runs inside worker processes (local pool or Dask), so it only returns
plain data; errors that must stop the run (geometry mismatch without ``--resample``) travel back as a payload.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from organsegbench.cohort.schema import REFERENCE, CaseSpec
from organsegbench.errors import GeometryMismatchError, OrganSegBenchError

log = logging.getLogger(__name__)

#: volumes are always computed (clinical utility and Bland-Altman need them)
VOLUME_METRICS = ("volume_ref", "volume_pred")


@dataclass(frozen=True)
class EvalOptions:
    """Options of a cohort evaluation (part of every cache key).

    Attributes:
        metrics: metric registry names, or None for every metric.
        structures: harmonised structure names to evaluate, or None for all.
        resample: resample predictions on other grids onto the reference grid (nearest neighbour).
        nsd_tolerance_mm: NSD tolerance in mm.
        harmonise: level of :mod:`organsegbench.labels` harmonisation: ``harmonised`` (default; e.g. lung lobes ->
            lung_left, heart chambers -> heart), ``canonical`` (synonyms resolved, chambers kept apart),
            ``grouped``, ``none`` (names as read), or ``auto`` (``canonical`` for cardiac cohorts, whose cases have
            a ``phase`` attribute, else ``harmonised``; resolved by the runner).
    """

    metrics: tuple[str, ...] | None = None
    structures: tuple[str, ...] | None = None
    resample: bool = False
    nsd_tolerance_mm: float = 2.0
    harmonise: str = "auto"

    def metric_list(self) -> list[str] | None:
        """Requested metrics plus the volumes, or None for all."""
        if self.metrics is None:
            return None
        return list(dict.fromkeys([*self.metrics, *VOLUME_METRICS]))


def read_labelmap(path: Path, vocabulary: str | None) -> tuple[Any, dict[int, str]]:
    """Read a label map (NIfTI/NRRD/DICOM SEG) with :func:`organsegbench.io.read_segmentation` and name its labels
    (from the file, else ``vocabulary``, else ``label_<value>``). Returns (label-map Image, value -> name)."""
    from organsegbench.io import read_segmentation

    seg = read_segmentation(path, vocabulary=vocabulary)
    names = {int(k): str(getattr(s, "name", "") or f"label_{k}") for k, s in seg.segments.items()}
    values = [int(v) for v in np.unique(seg.labelmap.array) if v != 0]
    return seg.labelmap, {v: names.get(v, f"label_{v}") for v in sorted(set(values) | set(names))}


def harmonise(array: np.ndarray, names: dict[int, str], level: str = "harmonised"
              ) -> tuple[np.ndarray, dict[int, str], str]:
    """Map labels to structure names of ``level`` through :mod:`organsegbench.labels` (several labels may merge
    into one, e.g. lung lobes -> lung_left). Unknown names are kept (normalised). Returns (array, names, note)."""
    if level == "none":
        return array, names, "not harmonised (disabled)"
    level = "harmonised" if level == "auto" else level
    if not names or all(n.startswith("label_") for n in names.values()):
        return array, names, "not harmonised (no structure names)"
    from organsegbench.labels import harmonised_labelmap

    arr, new = harmonised_labelmap(array, names, level=level, strict=False)
    return np.asarray(arr), {int(k): str(v) for k, v in new.items()}, f"harmonised ({level})"


def _common_ids(ref_names: dict[int, str], pred_names: dict[int, str], wanted: tuple[str, ...] | None
                ) -> dict[str, int]:
    """One integer id per structure name present in either map (restricted to ``wanted``)."""
    names = sorted(set(ref_names.values()) | set(pred_names.values()))
    if wanted is not None:
        names = [n for n in wanted]
    return {n: i for i, n in enumerate(names, start=1)}


def _remap(array: np.ndarray, names: dict[int, str], ids: dict[str, int]) -> np.ndarray:
    """Relabel ``array`` so that each structure carries its common id (structures not in ``ids`` become 0)."""
    if not names:
        return np.zeros(array.shape, dtype=np.uint16)
    lut = np.zeros(int(max(int(array.max()), max(names))) + 1, dtype=np.uint16)
    for value, name in names.items():
        if name in ids:
            lut[value] = ids[name]
    return lut[array.astype(np.int64, copy=False)]


def _row(case: str, model: str, status: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"case": case, "model": model, "structure": "", "metric": "", "value": float("nan"), "reason": reason,
            "status": status, **extra}


def evaluate_case(case: CaseSpec, options: EvalOptions) -> dict[str, Any]:
    """Evaluate every prediction of ``case`` against its reference.

    Returns ``{"case": id, "rows": [...], "fatal": None | (error class name, message, hint), "evaluated": 1}``.
    Rows carry case, model, structure, metric, value, reason, status (``ok``, ``missing``, ``error``) and
    provenance (files, vocabularies, harmonisation, resampling, time).
    """
    from organsegbench import __version__
    from organsegbench.io.geometry import align_to

    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    base = {"engine_version": __version__, "evaluated_utc": now, "reference_file": str(case.reference)}
    rows: list[dict[str, Any]] = []
    out = {"case": case.id, "rows": rows, "fatal": None, "evaluated": 1}
    if case.reference is None or not Path(case.reference).exists():
        for model, p in case.predictions.items():
            rows.append(_row(case.id, model, "missing", f"reference file not found: {case.reference}",
                             prediction_file=str(p), **base))
        return out
    try:
        ref_img, ref_names = read_labelmap(Path(case.reference), case.vocabularies.get(REFERENCE))
        ref_arr, ref_names, note = harmonise(ref_img.array, ref_names, options.harmonise)
    except OrganSegBenchError as exc:
        for model, p in case.predictions.items():
            rows.append(_row(case.id, model, "error", f"reference unreadable: {exc.message}",
                             prediction_file=str(p), **base))
        return out
    for model, pred_path in case.predictions.items():
        extra = {**base, "prediction_file": str(pred_path), "reference_vocabulary": case.vocabularies.get(REFERENCE),
                 "prediction_vocabulary": case.vocabularies.get(model)}
        if pred_path is None or not Path(pred_path).exists():
            why = "no prediction listed" if pred_path is None else f"prediction file not found: {pred_path}"
            rows.append(_row(case.id, model, "missing", why, **extra))
            continue
        try:
            pred_img, pred_names = read_labelmap(Path(pred_path), case.vocabularies.get(model))
            resampled = not _same(pred_img, ref_img)
            pred_img = align_to(pred_img, ref_img, resample=options.resample,
                                name_moving=f"prediction of model {model!r} for case {case.id!r}",
                                name_reference=f"reference of case {case.id!r}")
            pred_arr, pred_names, pnote = harmonise(pred_img.array, pred_names, options.harmonise)
            rows.extend(_metrics_rows(case.id, model, ref_img, ref_arr, ref_names, pred_arr, pred_names, options,
                                      {**extra, "harmonisation": f"reference {note}; prediction {pnote}",
                                       "resampled": bool(resampled)}))
        except GeometryMismatchError as exc:
            out["fatal"] = ("GeometryMismatchError", exc.message, exc.hint)
            return out
        except OrganSegBenchError as exc:
            rows.append(_row(case.id, model, "error", exc.message, **extra))
    return out


def _same(a: Any, b: Any) -> bool:
    from organsegbench.io.geometry import same_grid

    return same_grid(a, b)


def _metrics_rows(case: str, model: str, ref_img: Any, ref_arr: np.ndarray, ref_names: dict[int, str],
                  pred_arr: np.ndarray, pred_names: dict[int, str], options: EvalOptions,
                  extra: dict[str, Any]) -> list[dict[str, Any]]:
    from organsegbench.metrics import evaluate_pair

    ids = _common_ids(ref_names, pred_names, options.structures)
    if not ids:
        return [_row(case, model, "ok", "no structure in reference or prediction", **extra)]
    ref_c, pred_c = _remap(ref_arr, ref_names, ids), _remap(pred_arr, pred_names, ids)
    id_to_name = {i: n for n, i in ids.items()}
    results = evaluate_pair(ref_c, pred_c, ref_img.spacing_zyx, labels=id_to_name, metrics=options.metric_list(),
                            nsd_tolerance_mm=options.nsd_tolerance_mm)
    return [{"case": case, "model": model, "structure": id_to_name.get(int(r.label), f"label_{r.label}"),
             "metric": r.metric, "value": float(r.value), "reason": r.reason or "", "status": "ok", **extra}
            for r in results]
