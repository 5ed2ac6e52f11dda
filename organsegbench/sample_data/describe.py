"""Maintainer tool: re-measure the facts of the sample-data manifest from the extracted files.

The manifest's hand-written parts (cases, roles, paths, kinds, vocabularies, commands, notes) stay as they are;
every measured field (bytes, size, spacing, origin, direction, pixel type, value range, labels present, mask
counts) is recomputed with SimpleITK, so the manifest never carries a hand-typed number. Run after changing the
pinned archive::

    python -m organsegbench.sample_data.describe [ROOT] > organsegbench/resources/sample_data.json
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

MEASURED = ("bytes", "size_xyz", "spacing_mm", "origin_mm", "direction", "pixel_type", "value_range",
            "labels_present", "voxels", "n_files", "n_masks", "non_empty")


def _geometry(img: sitk.Image) -> dict[str, Any]:
    return {"size_xyz": list(img.GetSize()), "spacing_mm": [round(s, 6) for s in img.GetSpacing()],
            "origin_mm": [round(o, 4) for o in img.GetOrigin()],
            "direction": [round(d, 6) for d in img.GetDirection()], "pixel_type": img.GetPixelIDTypeAsString()}


def measure(path: Path, kind: str) -> dict[str, Any]:
    """Measured facts of one manifest entry of ``kind`` at ``path`` (sizes in voxels, lengths in mm)."""
    facts: dict[str, Any] = {}
    if kind == "dicom_series":
        reader = sitk.ImageSeriesReader()
        names = reader.GetGDCMSeriesFileNames(str(path))
        reader.SetFileNames(names)
        img = reader.Execute()
        facts["n_files"] = len(names)
        facts["bytes"] = sum(os.path.getsize(n) for n in names)
    elif kind == "mask_folder":
        files = sorted(p for p in path.iterdir() if p.name.endswith(".nii.gz"))
        facts["n_masks"] = len(files)
        facts["non_empty"] = [p.name[:-7] for p in files if sitk.GetArrayFromImage(sitk.ReadImage(str(p))).any()]
        facts["bytes"] = sum(p.stat().st_size for p in files)
        img = sitk.ReadImage(str(files[0]))
    else:
        img = sitk.ReadImage(str(path))
        facts["bytes"] = path.stat().st_size
    facts.update(_geometry(img))
    arr = sitk.GetArrayFromImage(img)
    if kind in ("image", "dicom_series"):
        facts["value_range"] = [int(arr.min()), int(arr.max())]
    elif kind in ("labelmap", "mask"):
        values = np.unique(arr)
        facts["labels_present"] = [int(v) for v in values if v != 0]
        if kind == "mask":
            facts["voxels"] = int((arr != 0).sum())
    return facts


def refresh(manifest: dict[str, Any], root: Path) -> dict[str, Any]:
    """Return ``manifest`` with every measured field recomputed from the files under ``root``."""
    for case in manifest["cases"].values():
        for role, entry in case["files"].items():
            kept = {k: v for k, v in entry.items() if k not in MEASURED}
            facts = measure(root / entry["path"], entry["kind"])
            ordered = {"path": kept.pop("path"), "kind": kept.pop("kind"), **{k: facts[k] for k in MEASURED
                                                                                 if k in facts}}
            case["files"][role] = {**ordered, **kept}
    return manifest


def dumps(manifest: dict[str, Any]) -> str:
    """The manifest as JSON with one-line number lists (the committed layout)."""
    text = json.dumps(manifest, indent=1, ensure_ascii=False)
    return re.sub(r"\[\s*([^\[\]{}]*?)\s*\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the refreshed manifest for the extraction root ``argv[0]`` (default: fetch into the cache)."""
    from organsegbench.sample_data import fetch, load_manifest

    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else fetch(progress=False).root
    sys.stdout.write(dumps(refresh(load_manifest(), root)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
