"""``organsegbench info FILE``: geometry of a volume, and for label maps / DICOM SEG the segments with volumes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

DESCRIPTION = """Show the geometry of an image or segmentation: size, spacing (mm), origin (mm, LPS), direction,
orientation code and physical extent. Images also get their intensity range; label maps and DICOM SEGs get a
table of the segments present with names, voxel counts and volumes in mL (exact per-segment masks, so overlapping
DICOM SEG segments are counted in full).

Integer volumes with at most 255 distinct values are treated as label maps (force with --labels / --image);
a DICOM SEG is always a segmentation. Reads NIfTI, NRRD (Slicer .seg.nrrd too), MetaImage, DICOM files and DICOM
series folders (JPEG 2000 included)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` sub-command."""
    p = subparsers.add_parser("info", help="show geometry, intensities or segments (with mL) of a file",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="NIfTI/NRRD/MHA file, DICOM file, DICOM SEG, or DICOM series folder")
    p.add_argument("--vocabulary", metavar="NAME", help="label vocabulary naming label values (e.g. total, organs)")
    p.add_argument("--series", metavar="UID", help="SeriesInstanceUID to read from a folder with several series")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--labels", action="store_true", help="treat the volume as a label map")
    kind.add_argument("--image", action="store_true", help="treat the volume as an intensity image")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p.set_defaults(func=run)


def geometry_dict(img: Any) -> dict[str, Any]:
    """Geometry of an :class:`~organsegbench.io.image.Image` as plain JSON-ready values (mm, LPS)."""
    from organsegbench.io.volumes import orientation_code

    m = img.index_to_physical_matrix()
    nx, ny, nz = img.size
    corners = np.array([[i, j, k, 1.0] for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)]) @ m.T
    extent = (corners[:, :3].max(axis=0) - corners[:, :3].min(axis=0) + np.abs(
        img.direction @ np.asarray(img.spacing))).tolist()
    return {"size": list(img.size), "spacing_mm": [round(s, 6) for s in img.spacing],
            "origin_mm": [round(o, 4) for o in img.origin],
            "direction": [round(float(v), 6) + 0.0 for v in img.direction.ravel()],
            "orientation": orientation_code(img), "extent_mm": [round(e, 3) for e in extent],
            "voxel_volume_ml": img.voxel_volume_ml, "dtype": str(img.array.dtype)}


def _is_segmentation(path: Path, args: argparse.Namespace) -> bool:
    from organsegbench.io.dicom_series import dicom_file_metadata
    from organsegbench.io.segmentation import sidecar_path
    from organsegbench.io.volumes import detect_format

    fmt = detect_format(path)
    if fmt == "dicom":
        return dicom_file_metadata(path).get("modality") == "SEG"
    if args.image or fmt == "dicom-folder":
        return False
    return bool(args.labels or args.vocabulary or path.name.lower().endswith(".seg.nrrd")
                or sidecar_path(path).is_file())


def describe(path: str | Path, vocabulary: str | None = None, series: str | None = None, labels: bool = False,
             image: bool = False) -> dict[str, Any]:
    """Everything ``info`` prints, as a dict (``kind`` is ``"image"`` or ``"segmentation"``)."""
    from organsegbench.io.segmentation import read_segmentation, segmentation_from_image
    from organsegbench.io.volumes import detect_format, is_label_like, read_image

    p = Path(path)
    args = argparse.Namespace(labels=labels, image=image, vocabulary=vocabulary)
    out: dict[str, Any] = {"path": str(p)}
    if _is_segmentation(p, args):
        seg = read_segmentation(p, vocabulary=vocabulary)
    else:
        img = read_image(p, series_uid=series)
        dicom = detect_format(p) in ("dicom", "dicom-folder")  # DICOM images are images unless --labels
        if not labels and (image or dicom or not is_label_like(img)):
            arr = img.array
            out.update(kind="image", geometry=geometry_dict(img),
                       intensity={"min": float(arr.min()), "max": float(arr.max()), "mean": float(arr.mean())},
                       metadata={k: v for k, v in img.metadata.items()
                                 if k in ("format", "modality", "series_uid", "series_description", "study_uid")})
            return out
        seg = segmentation_from_image(img, vocabulary) if dicom else read_segmentation(p, vocabulary=vocabulary)
    counts, vols = seg.voxel_counts(), seg.volumes_ml()
    rows = []
    for label, info in sorted(seg.segments.items()):
        rows.append({"label": label, "name": info.name, "voxels": counts[label], "volume_ml": vols[label],
                     "type": info.type, "category": info.category,
                     "overlaps_with": info.metadata.get("overlaps_with", [])})
    out.update(kind="segmentation", geometry=geometry_dict(seg.labelmap), segments=rows,
               overlapping=seg.overlapping,
               metadata={k: v for k, v in seg.metadata.items() if k in (
                   "format", "series_uid", "segmentation_type", "referenced_series_uids", "series_description")})
    return out


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(soft_wrap=True)
    g = report["geometry"]
    con.print(f"[bold]{report['path']}[/bold]  ({report['kind']}, {report['metadata'].get('format', '?')})")
    for k, v in report["metadata"].items():
        if k != "format" and v:
            con.print(f"  {k}: {v}")
    con.print(f"  size (x, y, z): {tuple(g['size'])}   dtype: {g['dtype']}")
    con.print(f"  spacing: {tuple(g['spacing_mm'])} mm   voxel: {g['voxel_volume_ml'] * 1000:.4g} mm³")
    con.print(f"  origin (LPS): {tuple(g['origin_mm'])} mm")
    con.print(f"  direction: {g['direction']}   orientation: {g['orientation']}")
    con.print(f"  extent: {tuple(g['extent_mm'])} mm")
    if report["kind"] == "image":
        i = report["intensity"]
        con.print(f"  intensity: min {i['min']:g}  max {i['max']:g}  mean {i['mean']:.4g}")
        return
    table = Table(title=f"{len(report['segments'])} segment(s)")
    for col, just in (("label", "right"), ("name", "left"), ("voxels", "right"), ("volume (mL)", "right"),
                      ("type", "left"), ("overlaps", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in report["segments"]:
        t = r["type"]
        table.add_row(str(r["label"]), r["name"], str(r["voxels"]), f"{r['volume_ml']:.3f}",
                      f"{t['meaning']} ({t['scheme']} {t['value']})" if t else "",
                      ", ".join(str(o) for o in r["overlaps_with"]))
    con.print(table)
    if report["overlapping"]:
        con.print("  note: segments overlap; voxels and volumes are counted on each segment's own mask")
    if report["segments"] and all(r["name"] == f"label_{r['label']}" for r in report["segments"]):
        con.print("  note: the file names no labels; name them with --vocabulary NAME (e.g. total for "
                  "TotalSegmentator outputs; `organsegbench labels` lists the vocabularies)")


def run(args: argparse.Namespace) -> int:
    """Print the description of ``args.file``."""
    report = describe(args.file, vocabulary=args.vocabulary, series=args.series, labels=args.labels,
                      image=args.image)
    if args.json:
        print(json.dumps(report, indent=1))  # noqa: T201
    else:
        _print(report)
    return 0
