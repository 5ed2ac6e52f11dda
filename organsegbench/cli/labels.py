"""``organsegbench labels``: list label vocabularies, show one with its SNOMED-CT codes, resolve names, match models."""

from __future__ import annotations

import argparse
import csv
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``labels`` sub-command."""
    p = subparsers.add_parser(
        "labels",
        help="label vocabularies: list, show, resolve a structure name, match several models",
        description="Without arguments: list the label vocabularies.\nWith VOCAB (a name or a JSON file): its label "
                    "values, canonical and harmonised structure names and SNOMED-CT codes.",
        epilog="examples:  organsegbench labels total_v1 --level harmonised\n"
               "           organsegbench labels --resolve 'left kidney'\n"
               "           organsegbench labels --match total total_v1 moose_clin_ct_organs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("vocabulary", nargs="?", help="vocabulary name (total, total_mr, total_v1, "
                                                 "moose_clin_ct_organs, organs) or a vocabulary JSON file")
    p.add_argument("--level", default="harmonised", help="harmonisation level: canonical, harmonised (default), "
                                                         "grouped")
    p.add_argument("--resolve", metavar="NAME", help="print the canonical structure behind any spelling")
    p.add_argument("--match", nargs="+", metavar="VOCAB", help="which of these vocabularies have each structure")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.set_defaults(func=run)


def _emit(rows: list[dict[str, object]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=1))  # noqa: T201
        return
    if not rows:
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))  # noqa: T201
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))  # noqa: T201


def _code_text(s: object) -> str:
    t, m = getattr(s, "type", None), getattr(s, "modifier", None)
    if t is None:
        return ""
    return f"SCT {t.value} {t.meaning}" + (f" + {m.meaning}" if m is not None else "")


def run(args: argparse.Namespace) -> int:
    """Run ``organsegbench labels``."""
    from organsegbench.labels import (
        catalogue,
        get_structure,
        get_vocabulary,
        harmonise,
        harmonised_name,
        list_vocabularies,
        match_structures,
    )

    if args.resolve:
        s = get_structure(args.resolve)
        rows = [{"query": args.resolve, "structure": s.name, "display_name": s.display_name,
                 "harmonised": harmonised_name(s.name, args.level), "snomed": _code_text(s),
                 "code_source": s.code_source or ""}]
    elif args.match:
        vocabs = [get_vocabulary(v) for v in args.match]
        table = match_structures(*(v.labels for v in vocabs), names=[v.name for v in vocabs], level=args.level)
        rows = [{"structure": r.structure, "count": r.count,
                 **{v.name: ",".join(map(str, labels)) or "-" for v, labels in zip(vocabs, r.labels, strict=True)}}
                for r in table]
    elif args.vocabulary:
        vocab = get_vocabulary(args.vocabulary)
        harm = harmonise(vocab.labels, level=args.level)
        cat = catalogue()
        rows = [{"label": k, "name": vocab.source_names[k], "structure": v, "harmonised": harm[k],
                 "snomed": _code_text(cat.structures[v])} for k, v in vocab]
    else:
        rows = []
        for name in list_vocabularies():
            v = get_vocabulary(name)
            src = v.source or {}
            rows.append({"vocabulary": name, "classes": len(v), "modality": v.modality, "title": v.title,
                         "source": f"{src.get('package', '')} {src.get('version', '')}".strip()})
    _emit(rows, args.format)
    return 0
