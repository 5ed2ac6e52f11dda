"""``organsegbench segment-cohort COHORT --model NAME --structures liver,spleen --out DIR``: batch mode."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from organsegbench.cli.prompts import add_protocol_arguments, protocol_from_args
from organsegbench.cli.segment import add_model_arguments, build_model

EXAMPLE = """example (box prompts 5 mm larger than each reference slice, every slice of the extent prompted):
  organsegbench segment-cohort cohort.yaml --model medsam --structures liver,spleen --margin-mm 5 \\
      --slices extent --out runs/medsam
  organsegbench evaluate runs/medsam/cohort.yaml --out runs/medsam/evaluation"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``segment-cohort`` sub-command."""
    p = subparsers.add_parser(
        "segment-cohort", help="run one model over every case of a cohort (prompts from the references), then "
                               "evaluate the cohort file it writes",
        description=textwrap.fill(
            "Segment every case of a cohort (CSV or YAML with image and reference per case; predictions optional) "
            "with one model, loaded once. Box models get boxes derived from each case's reference under the "
            "protocol below (the reference's label values are kept); text models get the structure names; "
            "automatic models run as they are. Writes DIR/<model>/<case>.nii.gz with provenance and segment "
            "names, DIR/segment_runs.csv (status and reason per case) and DIR/cohort.yaml (the cohort plus these "
            "predictions) for `organsegbench evaluate`. Cases already done with the same settings are skipped; a "
            "failing case is reported and the others go on.", 100) + "\n\n" + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cohort", type=Path, help="cohort file (.csv or .yaml) with image and reference per case")
    p.add_argument("--structures", metavar="NAMES",
                   help="comma-separated structures to prompt (box and text models), names as in the references")
    p.add_argument("--column", help="name of this model's predictions in the written cohort (default: the model)")
    add_model_arguments(p)
    add_protocol_arguments(p, seed=False)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the model over the cohort; print the statuses and the next command."""
    from organsegbench.cohort import load_cohort
    from organsegbench.cohort.segment_run import segment_cohort

    cohort = load_cohort(args.cohort, require_predictions=False)
    structures = tuple(s.strip() for s in (args.structures or "").split(",") if s.strip())
    model = build_model(args)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(cohort.cases), unit="case", desc=args.model)

    def progress(done: int, total: int, case: str) -> None:
        if bar is not None:
            bar.n = done
            bar.set_postfix_str(case)
            bar.refresh()

    try:
        result = segment_cohort(cohort, model, args.out, structures, protocol_from_args(args), args.column,
                                progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for row in result.rows:
        if row["status"] in ("failed", "skipped"):
            print(f"{row['case']}: {row['status']}: {row['reason']}")  # noqa: T201
        elif row["missing_structures"]:
            print(f"{row['case']}: not in the reference, not prompted: {row['missing_structures']}")  # noqa: T201
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts().items()))
    print(f"{len(result.rows)} cases: {counts}; statuses in {result.status_file}")  # noqa: T201
    resample = " --resample" if any(r["reference_resampled"] for r in result.rows) else ""
    if resample:
        print("some references are on another grid than their images (the predictions are on the image "  # noqa: T201
              "grid): evaluate with --resample")
    print(f"next: organsegbench evaluate {result.cohort_file} --out {Path(args.out) / 'evaluation'}{resample}")  # noqa: T201
    return 0 if any(r["status"] in ("done", "cached") for r in result.rows) else 1
