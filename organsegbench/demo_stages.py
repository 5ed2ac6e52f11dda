"""Later stages of the demo (see :mod:`organsegbench.demo`): cohort evaluation and report, surface error map and
STAPLE consensus. Each stage takes the fetched :class:`~organsegbench.sample_data.SampleData` and the output folder
and returns the files it wrote."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def sample_cohort(data: Any, folder: Path) -> Path:
    """Write a cohort file for the sample data: TotalSegmentator ``--fast`` against its normal output on the
    abdominal CT (the one sample case that has both; the ``--roi_subset`` outputs segment only the requested organs,
    so scoring them on every structure would count organs they were never asked for as misses)."""
    import yaml

    a = data.case("abdomen_ct")
    cases = [
        {"id": "abdomen_ct", "image": str(a.path("image")), "reference": str(a.path("seg_normal")),
         "predictions": {"fast": str(a.path("seg_fast"))}},
    ]
    path = folder / "sample_cohort.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"name": "TotalSegmentator --fast vs normal (sample data)",
                                    "vocabularies": {"reference": "total", "fast": "total"},
                                    "cases": cases}, sort_keys=False))
    return path


def evaluate(data: Any, out: Path, progress: bool = True) -> dict[str, Path]:
    """Stage 2: evaluate the sample cohort; writes ``evaluation/`` (tables, analyses, ``report.html``)."""
    from organsegbench.cohort import EvalOptions, evaluate_cohort

    folder = out / "evaluation"
    cohort = sample_cohort(data, folder)
    run = evaluate_cohort(cohort, folder, EvalOptions(), workers=1, progress=progress)
    log.info("evaluation: %s", run.summary)
    return {"cohort_file": cohort, "results_csv": folder / "results.csv", "report_html": folder / "report.html"}


def errormap(data: Any, out: Path, progress: bool = True, structure: str = "liver") -> dict[str, Path]:
    """Stage 3: signed surface error map of the ``--fast`` liver against the normal liver (``errormap/``: meshes
    with per-vertex distances in mm, PNG renderings, histogram, summary) and a binary STAPLE consensus of the two
    outputs for that structure (``consensus_staple_liver.nii.gz`` + ``.json`` with each model's estimated
    sensitivity/specificity)."""
    import json

    import numpy as np

    from organsegbench.fusion import fuse
    from organsegbench.io import read_image, write_image
    from organsegbench.labels import get_vocabulary
    from organsegbench.provenance import provenance
    from organsegbench.surfaces import errormap_from_labelmaps, write_errormap

    case = data.case("abdomen_ct")
    normal, fast = read_image(case.path("seg_normal")), read_image(case.path("seg_fast"))
    label = get_vocabulary("total").label_of(structure)
    em = errormap_from_labelmaps(normal, fast, ref_label=label, pred_label=label, structure=structure,
                                 case="abdomen_ct (fast vs normal)")
    folder = out / "errormap"
    summary = write_errormap(em, folder, structure=structure, case="abdomen_ct: --fast vs normal")
    files = {"errormap_summary": folder / "summary.json"}
    files.update({f"errormap_{k}": Path(v) for k, v in summary.get("files", {}).items() if str(v).endswith(".png")})

    masks = [img.with_array((img.array == label).astype(np.uint8)) for img in (normal, fast)]
    result = fuse(masks, "staple", names=["normal", "fast"])
    consensus = out / f"consensus_staple_{structure}.nii.gz"
    write_image(result.labelmap, consensus)
    report = provenance(method="staple", structure=structure, label=label, per_model=result.per_model,
                        inputs=[str(case.path("seg_normal").name), str(case.path("seg_fast").name)])
    consensus.with_suffix("").with_suffix(".json").write_text(json.dumps(report, indent=2, default=float))
    files["consensus_staple"] = consensus
    return files
