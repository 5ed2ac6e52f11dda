"""Writing an error map or a cohort error map to a folder: meshes, PNG views, histogram, JSON summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from organsegbench.surfaces.cohort import CohortErrorMap
from organsegbench.surfaces.errormap import ErrorMap
from organsegbench.surfaces.export import render_png, symmetric_limit, write_surface

SIGN_NOTE = "blue: prediction inside the reference, red: outside"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def histogram_png(em: ErrorMap, path: Path, title: str, bin_width_mm: float = 0.5) -> Path:
    """Histogram of the signed errors of both directions (mm) on shared bins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = em.histograms(bin_width_mm)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key, label, colour in (("pred_to_ref", "prediction vertices → reference", "tab:red"),
                               ("ref_to_pred", "reference vertices → prediction", "tab:blue")):
        counts, edges = hist[key]
        ax.stairs(counts / max(counts.sum(), 1), edges, label=label, color=colour, linewidth=1.5)
    ax.axvline(0, color="0.4", linewidth=0.8)
    ax.set_xlabel("signed surface distance (mm); negative = inside the reference")
    ax.set_ylabel("fraction of vertices")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_errormap(em: ErrorMap, out_dir: str | Path, structure: str | None = None, case: str | None = None,
                   render: bool = True, bin_width_mm: float = 0.5) -> dict[str, Any]:
    """Write meshes (VTP/PLY/STL), PNG renderings, histogram (PNG + CSV) and ``summary.json``; returns the
    summary dict (with ``files`` and ``rendering_backend``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for role, surf in (("prediction", em.prediction), ("reference", em.reference)):
        for ext in ("vtp", "ply", "stl"):
            files[f"{role}_{ext}"] = str(write_surface(surf, out / f"{role}_surface.{ext}"))
    what = structure or em.metadata.get("structure") or "structure"
    who = f"case {case}" if case else "one case"
    backend = None
    lim = symmetric_limit(np.concatenate([em.pred_to_ref, em.ref_to_pred]))
    if render:
        for role, surf, verb in (("prediction", em.prediction, "prediction surface: distance to reference"),
                                 ("reference", em.reference, "reference surface: error of the prediction")):
            png = out / f"errormap_{role}.png"
            backend = render_png(surf, png, title=f"{what} — {who}\n{verb}\n{SIGN_NOTE}", limit_mm=lim)
            files[f"{role}_png"] = str(png)
    files["histogram_png"] = str(histogram_png(em, out / "histogram.png", f"{what} — {who}: signed surface "
                                               "distances", bin_width_mm))
    hist = em.histograms(bin_width_mm)
    with open(out / "histogram.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["bin_low_mm", "bin_high_mm", "pred_to_ref_count", "ref_to_pred_count"])
        edges = hist["pred_to_ref"][1]
        for i in range(len(edges) - 1):
            w.writerow([f"{edges[i]:g}", f"{edges[i + 1]:g}", int(hist["pred_to_ref"][0][i]),
                        int(hist["ref_to_pred"][0][i])])
    files["histogram_csv"] = str(out / "histogram.csv")
    summary = {"structure": what, "case": case, "units": "mm", "summary": em.summary, "rendering_backend": backend,
               "colour_limit_mm": lim, "files": files, "metadata": em.metadata,
               "reference_mesh": em.reference.metadata, "prediction_mesh": em.prediction.metadata}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    return summary


def write_cohort_errormap(cm: CohortErrorMap, out_dir: str | Path, structure: str | None = None,
                          render: bool = True) -> dict[str, Any]:
    """Write the template mesh with its statistics (VTP/PLY), PNG views of mean signed and 95th-percentile absolute
    error, the per-case alignments and ``cohort_summary.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    what = structure or cm.template.metadata.get("structure") or "structure"
    files = {"template_vtp": str(write_surface(cm.template, out / "template_errors.vtp")),
             "template_ply": str(write_surface(cm.template, out / "template_errors.ply"))}
    backend = None
    n = len(cm.alignments)
    if render:
        for arr, desc in (("mean_signed_mm", "mean signed error"), ("median_signed_mm", "median signed error"),
                          ("p95_abs_mm", "95th percentile of |error|")):
            png = out / f"cohort_{arr.removesuffix('_mm')}.png"
            note = f"\n{SIGN_NOTE}" if "signed" in arr else ""
            backend = render_png(cm.template, png, array=arr,
                                 title=f"{what} — {n} cases on template {cm.template_case}\n{desc}{note}")
            files[png.stem] = str(png)
    stats = {name: {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
             for name, v in cm.template.point_data.items()}
    summary = {"structure": what, "template_case": cm.template_case, "n_cases": n, "units": "mm",
               "rendering_backend": backend, "per_vertex_array_ranges": stats, "files": files,
               "alignments": {k: {"matrix": a.matrix, "mode": a.mode, "mean_distance_mm": a.mean_distance_mm,
                                  "iterations": a.iterations} for k, a in cm.alignments.items()},
               "metadata": cm.metadata}
    (out / "cohort_summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    return summary
