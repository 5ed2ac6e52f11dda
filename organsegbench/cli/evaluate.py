"""``organsegbench evaluate COHORT --out DIR``: evaluate every prediction of a cohort against its reference."""

from __future__ import annotations

import argparse
import math

from organsegbench.errors import ConfigError


def _names(values: list[str] | None) -> tuple[str, ...] | None:
    """Accept ``--x a b`` and ``--x a,b``."""
    if not values:
        return None
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _edges(text: str | None, option: str) -> list[float] | None:
    if not text:
        return None
    try:
        edges = [(-math.inf if v.strip() in ("-inf", "") else math.inf if v.strip() == "inf" else float(v))
                 for v in text.split(",")]
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r} is not a comma-separated list of numbers",
                          hint=f"e.g. {option} 20,30,40,50,60 (use -inf/inf for open ends)") from exc
    return edges


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate", help="evaluate model predictions of a cohort against references (tables + HTML report)",
        description="Evaluate every model's prediction of every case of a cohort file (CSV or YAML) against the "
                    "reference: metrics in mm/mL per harmonised structure, robustness, fairness, generalisation "
                    "and clinical-utility analyses, and a self-contained report.html. Finished cases are cached "
                    "in OUT/cache and skipped when the command is run again.",
        epilog="Cohort CSV columns: id, image, reference, pred:<model>…, vocab:<model|reference>, then attributes "
               "(sex, age, bmi, subject, phase, heart_rate, …). Paths are relative to the cohort file.")
    p.add_argument("cohort", metavar="COHORT", help="cohort file (.csv, .yaml)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--metrics", nargs="+", metavar="NAME", help="metrics to compute (default: all); e.g. dsc hd95 nsd")
    p.add_argument("--structures", nargs="+", metavar="NAME", help="structures to evaluate (default: all)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: CPU count, max 8; 1 = in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--resample", action="store_true",
                   help="resample predictions on another grid onto the reference grid (nearest neighbour)")
    p.add_argument("--nsd-tolerance", type=float, default=2.0, metavar="MM", help="NSD tolerance in mm (default 2)")
    p.add_argument("--attributes", nargs="+", metavar="NAME", help="attributes for fairness (default: sex age bmi)")
    p.add_argument("--age-bands", metavar="EDGES", help="age band edges in years (default 20,30,40,50,60)")
    p.add_argument("--bmi-bands", metavar="EDGES", help="BMI band edges in kg/m² (default -inf,21,24,inf)")
    p.add_argument("--bands", nargs="+", metavar="ATTR=EDGES", default=[],
                   help="band edges of any numeric attribute, e.g. --bands weight=50,70,90 height=-inf,170,inf")
    p.add_argument("--fairness-metric", default="dsc", metavar="NAME",
                   help="metric compared between attribute groups (default dsc)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level after FDR (default 0.05)")
    p.add_argument("--harmonise", default="auto", metavar="LEVEL",
                   help="structure-name harmonisation: harmonised (lung lobes -> lung_left, heart chambers -> heart), "
                        "canonical, grouped, none; default auto = canonical for cardiac cohorts (phase attribute), "
                        "else harmonised")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation; prints a short summary."""
    from organsegbench.cohort import EvalOptions, evaluate_cohort

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers} must be at least 1", hint="e.g. --workers 4")
    if not (args.nsd_tolerance >= 0 and math.isfinite(args.nsd_tolerance)):
        raise ConfigError(f"--nsd-tolerance {args.nsd_tolerance} mm must be >= 0", hint="e.g. --nsd-tolerance 2")
    bands = {k: v for k, v in (("age", _edges(args.age_bands, "--age-bands")),
                               ("bmi", _edges(args.bmi_bands, "--bmi-bands"))) if v}
    for item in args.bands:
        attr, sep, edges = item.partition("=")
        if not sep or not attr.strip():
            raise ConfigError(f"--bands {item!r} is not ATTR=EDGES", hint="e.g. --bands weight=50,70,90")
        bands[attr.strip()] = _edges(edges, f"--bands {attr.strip()}=")  # type: ignore[assignment]
    options = EvalOptions(metrics=_names(args.metrics), structures=_names(args.structures), resample=args.resample,
                          nsd_tolerance_mm=args.nsd_tolerance, harmonise=args.harmonise)
    res = evaluate_cohort(args.cohort, args.out, options, workers=args.workers, scheduler=args.scheduler,
                          progress=not args.no_progress, report=not args.no_report, bands=bands or None,
                          attributes=list(_names(args.attributes) or []) or None, alpha=args.alpha,
                          fairness_metric=args.fairness_metric)
    s = res.summary
    print(f"{s['n_cases']} cases x {len(s['models'])} models: {s['evaluated']} evaluated, {s['cached']} from cache; "  # noqa: T201
          f"{s['ok']} ok, {s['missing']} missing, {s['errors']} failed")
    for m in s["missing_pairs"][:10]:
        print(f"  missing: {m['case']} / {m['model']}: {m['reason']}")  # noqa: T201
    print(f"table:  {res.out_dir / 'results.parquet'} (and .csv)")  # noqa: T201
    if "report" in s:
        print(f"report: {s['report']}")  # noqa: T201
    return 0
