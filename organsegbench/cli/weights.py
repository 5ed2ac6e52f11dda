"""``organsegbench weights list | download NAME | import NAME FILE``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``weights`` sub-command."""
    p = subparsers.add_parser("weights", help="list, download or import model checkpoints (sha256-verified)")
    sub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="catalog entries, sizes, licences, cache state")
    ls.set_defaults(func=run_list)
    dl = sub.add_parser("download", help="download a checkpoint into the cache (resumable, verified)")
    dl.add_argument("name")
    dl.add_argument("--allow-unverified", action="store_true",
                    help="accept a checkpoint that has no published sha256 (recorded as unverified)")
    dl.add_argument("--url", help="mirror URL instead of the catalog's")
    dl.set_defaults(func=run_download)
    im = sub.add_parser("import", help="copy a local checkpoint into the cache after checking its sha256")
    im.add_argument("name")
    im.add_argument("file")
    im.add_argument("--allow-unverified", action="store_true",
                    help="accept a file for an entry without a published sha256 (recorded as unverified)")
    im.set_defaults(func=run_import)


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"


def run_list(args: argparse.Namespace) -> int:
    """Print the catalog with cache state."""
    from rich.console import Console
    from rich.table import Table

    from organsegbench.models import weights as W

    t = Table(title="Model weights")
    for col in ("name", "model", "size", "sha256", "licence", "cached"):
        t.add_column(col, no_wrap=col in ("name", "sha256"))
    for name, e in W.catalog().items():
        rec = W.record(name) if W.is_present(name) else None
        cached = "no" if rec is None else ("verified" if rec.get("verified") else "[yellow]unverified[/yellow]")
        t.add_row(name, e.model, _size(e.size), (e.sha256[:12] + "…") if e.sha256 else "[yellow]unknown[/yellow]",
                  e.licence, cached)
    Console().print(t)
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Download one checkpoint."""
    from organsegbench.models import weights as W

    p = W.download_weights(args.name, allow_unverified=args.allow_unverified, url=args.url)
    print(f"{args.name}: {p}")  # noqa: T201
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import one checkpoint."""
    from organsegbench.models import weights as W

    p = W.import_weights(args.name, args.file, allow_unverified=args.allow_unverified)
    rec = W.record(args.name)
    print(f"{args.name}: {p} ({'verified' if rec and rec.get('verified') else 'unverified'})")  # noqa: T201
    return 0
