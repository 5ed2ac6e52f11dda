"""The README's main job: a tour of OrganSegBench on real CT fetched from the package registry.

Stages (each writes into ``out``):

1. ``structures.csv`` — TotalSegmentator ``--fast`` vs normal on the abdominal CT: one row per structure with its
   canonical name, both volumes (mL), DSC, HD95/ASSD (mm) and NSD at 2 mm; ``overlay.png`` — an axial montage.
2. ``evaluation/`` — the same pair evaluated as a cohort (tidy table, analyses, self-contained HTML report).
3. ``errormap/`` — signed surface distances of the fast liver against the normal liver (VTP + PNG) and
   ``consensus_staple.nii.gz`` — a STAPLE consensus of the two outputs.

Every table carries provenance (inputs' sha256, versions).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from organsegbench.io.image import Image
from organsegbench.provenance import provenance

log = logging.getLogger(__name__)

#: metrics of the per-structure table, in column order
TABLE_METRICS = ("volume_ref", "volume_pred", "dsc", "hd95", "assd", "nsd")


@dataclass
class DemoResult:
    """Paths written by :func:`run_demo` and the rows of the per-structure table."""

    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    rows: list[dict[str, object]] = field(default_factory=list)


def structure_table(ref: Image, pred: Image, vocabulary: str) -> list[dict[str, object]]:
    """Per-structure rows comparing two label maps of one vocabulary (reference first, same grid).

    Returns dicts with ``label``, ``structure``, ``volume_normal_ml``, ``volume_fast_ml``, ``dsc``, ``hd95_mm``,
    ``assd_mm``, ``nsd_2mm`` and ``note`` (why a value is empty).
    """
    from organsegbench.io import require_same_grid
    from organsegbench.labels import get_vocabulary
    from organsegbench.metrics import evaluate_pair

    require_same_grid(ref, pred, "normal", "fast")
    names = get_vocabulary(vocabulary).labels
    results = evaluate_pair(ref.array, pred.array, ref.spacing_zyx, metrics=TABLE_METRICS, nsd_tolerance_mm=2.0)
    by_label: dict[int, dict[str, object]] = {}
    for r in results:
        row = by_label.setdefault(r.label, {"label": r.label, "structure": names.get(r.label, f"label_{r.label}"),
                                            "note": ""})
        row[r.metric] = r.value
        if r.reason and not row["note"]:
            row["note"] = r.reason
    rename = {"volume_ref": "volume_normal_ml", "volume_pred": "volume_fast_ml", "hd95": "hd95_mm",
              "assd": "assd_mm", "nsd": "nsd_2mm"}
    rows = []
    for lab in sorted(by_label):
        row = {rename.get(k, k): v for k, v in by_label[lab].items()}
        rows.append({k: (round(v, 6) if isinstance(v, float) and not math.isnan(v) else v) for k, v in row.items()})
    return rows


def write_csv(rows: list[dict[str, object]], path: Path, meta: dict[str, object]) -> Path:
    """Write ``rows`` as CSV (NaN as empty) and ``meta`` as a ``.provenance.json`` sidecar."""
    cols = list(rows[0]) if rows else []
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    path.with_suffix(".provenance.json").write_text(json.dumps(meta, indent=2))
    return path


def run_demo(out: str | Path, progress: bool = True,
             stages: tuple[str, ...] = ("compare", "evaluate", "errormap"),
             on_stage: Callable[[str], None] | None = None) -> DemoResult:
    """Fetch the sample data (once) and run the demo stages into ``out``."""
    from organsegbench import sample_data
    from organsegbench.download import sha256_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = DemoResult(out)
    data = sample_data.fetch(progress=progress)
    case = "abdomen_ct"
    ct, normal, fast = (data.path(case, r) for r in ("image", "seg_normal", "seg_fast"))
    meta = provenance(task="TotalSegmentator --fast vs normal", reference=str(normal.name),
                      prediction=str(fast.name), image=str(ct.name),
                      inputs_sha256={p.name: sha256_file(p) for p in (ct, normal, fast)},
                      source=f"{sample_data.TOTALSEG_SDIST.package}=={sample_data.TOTALSEG_SDIST.version} sdist")
    if "compare" in stages:
        if on_stage:
            on_stage("compare")
        from organsegbench.io import read_image

        ct_img, normal_img, fast_img = read_image(ct), read_image(normal), read_image(fast)
        res.rows = structure_table(normal_img, fast_img, "total")
        res.files["structures_csv"] = write_csv(res.rows, out / "structures.csv", meta)
        res.files["overlay_png"] = _montage(ct_img, normal_img, fast_img, out / "overlay.png")
    for stage in ("evaluate", "errormap"):
        if stage in stages:
            if on_stage:
                on_stage(stage)
            from organsegbench import demo_stages

            res.files.update(getattr(demo_stages, stage)(data, out, progress=progress))
    return res


def _montage(ct: Image, normal: Image, fast: Image, png: Path) -> Path:
    from organsegbench.labels import get_vocabulary
    from organsegbench.viz.montage import overlay_montage

    return overlay_montage(ct, normal, fast, png,
                           labels=get_vocabulary("total").labels, names=("normal", "fast"),
                           title="TotalSegmentator normal (solid) vs --fast (dashed), abdominal CT")
