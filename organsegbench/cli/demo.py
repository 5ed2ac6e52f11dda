"""``organsegbench demo``: the guided tour on real sample CT (see :mod:`organsegbench.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="fetch real sample CT and compare TotalSegmentator --fast with normal",
        description="Fetch the sample data (TotalSegmentator's reference files from PyPI, verified by sha256), "
                    "then write a per-structure table (volumes in mL, DSC, HD95/ASSD in mm, NSD), an overlay "
                    "montage, a cohort evaluation report, a surface error map and a STAPLE consensus.")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default: demo-output)")
    p.add_argument("--stages", default="compare,evaluate,errormap",
                   help="comma-separated stages to run (default: all: compare,evaluate,errormap)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from organsegbench.demo import run_demo

    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    res = run_demo(args.out, progress=not args.no_progress, stages=stages,
                   on_stage=lambda s: print(f"== {s}"))  # noqa: T201
    for row in res.rows:
        if row["structure"] in ("liver", "spleen", "pancreas", "kidney_left", "kidney_right", "aorta"):
            print(f"  {row['structure']:<14} DSC {row['dsc']:.3f}  HD95 {row['hd95_mm']:.1f} mm  "  # noqa: T201
                  f"V normal {row['volume_normal_ml']:.1f} mL  V fast {row['volume_fast_ml']:.1f} mL")
    for name, path in res.files.items():
        print(f"{name}: {path}")  # noqa: T201
    return 0
