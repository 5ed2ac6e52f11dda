"""``organsegbench sample-data``: fetch (once) and describe the real sample cases."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "download, verify and extract the sample CT/MR cases (once), then show where they are"
DESCRIPTION = """\
Fetch the reference files of TotalSegmentator's test suite from the PyPI source distribution
totalsegmentator==2.18.0 (38 MB, sha256-verified), extract only tests/reference_files/ into the cache, and list
the cases: an abdominal CT with TotalSegmentator normal and --fast outputs, a 20-slice JPEG 2000 DICOM series with
its segmentation, a chest CT angiography with heart/aorta masks, and an MR case. A second run does nothing.
The package index is $ORGANSEGBENCH_INDEX_URL, $PIP_INDEX_URL or pip's configured index-url (default PyPI);
`pip download` is the fallback."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sample-data`` sub-command."""
    p = subparsers.add_parser("sample-data", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="cache root (default: $ORGANSEGBENCH_CACHE or ~/.cache/organsegbench)")
    p.add_argument("--list", action="store_true",
                   help="also list every file of every case with its role, geometry, labels and notes")
    p.add_argument("--force", action="store_true", help="extract again even if the data are already complete")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def _geometry(info: dict) -> str:
    size = info.get("size_xyz")
    spacing = info.get("spacing_mm")
    if not size or not spacing:
        return ""
    return f"{'x'.join(str(s) for s in size)} vox @ {'x'.join(f'{s:g}' for s in spacing)} mm"


def _describe_file(f) -> str:
    info = f.info
    parts = [f.kind, _geometry(info)]
    if info.get("labels_present"):
        vocab = f" ({f.vocabulary})" if f.vocabulary else ""
        parts.append(f"{len(info['labels_present'])} labels{vocab}")
    if info.get("structure"):
        parts.append(info["structure"])
    if f.kind == "mask_folder":
        parts.append(f"{info.get('n_masks')} masks, {len(info.get('non_empty', []))} non-empty")
    if f.kind == "dicom_series":
        parts.append(f"{info.get('n_files')} files")
    return ", ".join(p for p in parts if p)


def run(args: argparse.Namespace) -> int:
    """Fetch the sample data and print the root folder and the cases."""
    from organsegbench import sample_data

    data = sample_data.fetch(cache=args.cache, progress=not args.no_progress, force=args.force)
    src = data.manifest["source"]
    print(f"sample data: {data.root}")  # noqa: T201
    print(f"source: {src['filename']} (sha256 {src['sha256'][:12]}…), "  # noqa: T201
          f"archive kept in {sample_data.sample_root(args.cache).parent.parent / 'downloads'}")
    for case in data.cases.values():
        print(f"\n{case.name} [{case.modality}] {case.description}")  # noqa: T201
        roles = case.files.values() if args.list else []
        for f in roles:
            print(f"  {f.role:24s} {f.info['path']}  ({_describe_file(f)})")  # noqa: T201
        if not args.list:
            print(f"  roles: {', '.join(case.files)}")  # noqa: T201
        else:
            for note in case.notes:
                print(f"  note: {note}")  # noqa: T201
    if not args.list:
        print("\nrun with --list for file paths, geometry, labels and the known traps")  # noqa: T201
    return 0
