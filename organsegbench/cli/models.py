"""``organsegbench models``: models, capabilities, licences and whether their weights are present."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` sub-command."""
    p = subparsers.add_parser("models", help="list models, prompts, licences and cached weights")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the model table."""
    from organsegbench.models import registry

    rows = registry.describe()
    if args.json:
        print(json.dumps(rows, indent=1))  # noqa: T201
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title="OrganSegBench models")
    for col in ("model", "dims", "prompts", "modalities", "GPU", "code licence", "weights licence", "weights cached",
                "package"):
        t.add_column(col, no_wrap=col == "model")
    for r in rows:
        if "error" in r:
            t.add_row(r["name"], "", "", "", "", "", "", "", f"[red]{r['error']}[/red]")
            continue
        present = (", ".join(r["weights_present"]) if r["weights_present"]
                   else f"none of {len(r['weights'])} (`weights list`)" if r["weights"] else "—")
        pkg = {True: "installed", False: f"missing: {r['package']}", None: "—"}[r["package_installed"]]
        t.add_row(r["name"], r["dims"], ",".join(r["prompt_kinds"]), ",".join(r.get("modalities") or ()),
                  str(r.get("gpu") or ""), r["code_licence"], r["weights_licence"], present, pkg)
    Console().print(t)
    return 0
