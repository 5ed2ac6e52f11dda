"""Reading masks for the error-map and fusion commands, and picking one structure's label value.

Label maps go through :func:`organsegbench.io.read_segmentation` (NIfTI, NRRD, MetaImage, DICOM SEG). 8-bit
picture files (``.png``, ``.jpg``, ``.bmp``, ``.tif``) are read as binary masks: foreground = value > 127 (the
seed's 0/255 convention; lossy JPEG edges are cut at half intensity), one slice, 1 mm pixel spacing and 1 mm slice
thickness since the files carry no geometry (stated in the image metadata).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from organsegbench.errors import AmbiguousInputError, InputFileError, unknown_name
from organsegbench.io.image import Image

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GENERIC = ("foreground", "mask")


def read_picture_mask(path: str | Path, structure: str | None = None) -> tuple[Image, dict[int, str]]:
    """Read an 8-bit picture as a one-slice binary mask (> 127) with 1 mm spacing; returns (Image, {1: name})."""
    import SimpleITK as sitk

    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"mask file {str(p)!r} does not exist", hint="check the path")
    try:
        img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        raise InputFileError(f"cannot read picture {str(p)!r}: {str(exc).strip().splitlines()[-1]}",
                             hint="pass an 8-bit PNG/JPEG mask") from exc
    arr = sitk.GetArrayFromImage(img)
    if img.GetNumberOfComponentsPerPixel() > 1:
        arr = arr[..., 0]  # grey masks saved as RGB(A): channels are equal
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    mask = (arr > 127).astype(np.uint8)
    meta = {"source": str(p), "format": "picture",
            "geometry": "none in file: 1 mm pixels, 1 mm slice thickness assumed", "binarised": "> 127"}
    return Image(mask, metadata=meta), {1: structure or "foreground"}


def read_mask_file(path: str | Path, vocabulary: str | None = None,
                   structure: str | None = None) -> tuple[Image, dict[int, str]]:
    """Read a label map or picture mask; returns ``(label map Image, label value -> name)``."""
    p = Path(path)
    if p.suffix.lower() in PICTURE_SUFFIXES:
        return read_picture_mask(p, structure)
    from organsegbench.io import read_segmentation

    seg = read_segmentation(p, vocabulary=vocabulary)
    names = {int(k): str(getattr(s, "name", "") or f"label_{k}") for k, s in seg.segments.items()}
    values = {int(v) for v in np.unique(seg.labelmap.array) if v != 0}
    return seg.labelmap, {v: names.get(v, f"label_{v}") for v in sorted(values | set(names))}


def _canon(name: str) -> str:
    try:
        from organsegbench.labels import canonical_name

        return canonical_name(name)
    except Exception:  # noqa: BLE001 - unknown to the catalogue: compare normalised spelling
        return name.strip().lower().replace(" ", "_").replace("-", "_")


def select_label(names: dict[int, str], structure: str | None, source: str,
                 consequence: str = "no surface can be built") -> int | None:
    """Label value of ``structure`` in a map whose labels are ``names`` (``consequence`` ends the empty-structure
    message: what cannot be done without it).

    A single-label map with a generic name (``foreground``, ``label_1``, picture masks) is taken to be the
    structure asked for. Without ``structure`` a single-label map gives its label.

    Raises:
        UnknownNameError: ``structure`` is not among the map's structures (close matches listed).
        EmptyMaskError: ``structure`` is a catalogued structure that the map does not hold (no voxel).
        AmbiguousInputError: several structures and no ``structure`` given.
    """
    if structure is None:
        if len(names) <= 1:
            return next(iter(names), None)
        raise AmbiguousInputError(
            f"{source} holds {len(names)} structures ({', '.join(sorted(names.values())[:12])}…)",
            hint="choose one with --structure NAME")
    if len(names) == 1:
        value, name = next(iter(names.items()))
        if name in GENERIC or name.startswith("label_") or _canon(name) == _canon(structure):
            return value
    wanted = _canon(structure)
    for value, name in names.items():
        if _canon(name) == wanted:
            return value
    if names and all(n.startswith("label_") for n in names.values()):
        from organsegbench.errors import UnknownNameError

        raise UnknownNameError(
            f"structure {structure!r} cannot be found in {source}: its labels {sorted(names)} carry no names",
            hint="name them with --vocabulary (e.g. --vocabulary total for TotalSegmentator outputs)")
    present = sorted(set(names.values()))
    if _is_catalogued(structure):
        from organsegbench.errors import EmptyMaskError

        shown = ", ".join(present[:12]) + ("…" if len(present) > 12 else "")
        raise EmptyMaskError(
            f"structure {structure!r} has no voxel in {source} (it holds: {shown or 'nothing'}); {consequence}",
            hint="check the spelling and --vocabulary, or pick a structure the map holds (a model that missed the "
                 "structure is reported as missed)")
    raise unknown_name("structure", structure, present)


def _is_catalogued(name: str) -> bool:
    """True when ``name`` is a structure of the label catalogue (so its absence from a map means empty)."""
    try:
        from organsegbench.labels import canonical_name

        canonical_name(name)
    except Exception:  # noqa: BLE001 - unknown name (or no catalogue): not catalogued
        return False
    return True
