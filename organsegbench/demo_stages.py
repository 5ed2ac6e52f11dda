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
