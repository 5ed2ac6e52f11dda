"""Provenance records attached to every produced mask, table and report."""

from __future__ import annotations

import datetime as _dt
import platform
from importlib import metadata
from typing import Any

#: packages whose versions are recorded when installed
TRACKED_PACKAGES = (
    "organsegbench", "numpy", "SimpleITK", "scipy", "highdicom", "vtk", "torch", "segment-anything", "sam2",
    "totalsegmentator", "moosez", "nnunetv2",
)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (absent packages are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance(**fields: Any) -> dict[str, Any]:
    """A provenance dict: the given fields (model, weights_sha256, prompt_protocol, seed, …) plus versions,
    Python version and a UTC timestamp."""
    return {
        **fields,
        "versions": package_versions(),
        "python": platform.python_version(),
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def image_record(image: Any) -> dict[str, Any]:
    """Which image a result was made from: source file (when read from one), grid, and the sha256 of the voxel
    values (C order, their dtype), which identifies the content whatever the file format."""
    import hashlib

    import numpy as np

    return {"source": str(image.metadata.get("source")) if image.metadata.get("source") else None,
            "shape_zyx": [int(n) for n in image.shape],
            "spacing_xyz_mm": [float(v) for v in image.spacing],
            "origin_xyz_mm": [float(v) for v in image.origin],
            "dtype": str(image.array.dtype),
            "array_sha256": hashlib.sha256(np.ascontiguousarray(image.array).tobytes()).hexdigest()}
