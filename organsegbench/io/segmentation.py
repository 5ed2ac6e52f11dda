"""Segmentations: an integer label map plus per-segment metadata, read from and written to every supported format.

Overlap policy (DICOM SEG and Slicer ``.seg.nrrd`` can hold overlapping segments; a label map cannot):

* ``labelmap`` is the *flattened* view: each voxel covered by at least one segment carries a label of a segment that
  covers it; where segments overlap, the segment with the higher label wins (painter's order).
* ``overlap_masks`` holds the exact binary mask of every segment involved in an overlap; ``segment_mask(label)`` and
  ``masks()`` always give exact per-segment masks, and ``voxel_counts()``/``volumes_ml()`` are computed from them.
* ``overlapping`` is True in that case, each affected ``SegmentInfo.metadata["overlaps_with"]`` lists the other
  labels, and a warning is logged. No segment is ever dropped: writers refuse formats that cannot keep overlaps.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from organsegbench.errors import InputFileError
from organsegbench.io.image import Image
from organsegbench.io.segment_info import SegmentInfo, name_segments
from organsegbench.io.volumes import (
    check_nifti_integrity,
    detect_format,
    image_from_sitk,
    is_dicom_file,
    output_format,
)

log = logging.getLogger(__name__)

SIDECAR_FORMAT = "organsegbench-segments/1"


@dataclass
class Segmentation:
    """A label map with per-segment metadata (see the module docstring for the overlap policy).

    Attributes:
        labelmap: integer label map on the segmentation's grid (0 = background).
        segments: label value -> :class:`SegmentInfo`.
        overlap_masks: exact boolean masks (array shape of ``labelmap``) of the segments involved in overlaps.
        metadata: source path, format, referenced series and similar.
    """

    labelmap: Image
    segments: dict[int, SegmentInfo] = field(default_factory=dict)
    overlap_masks: dict[int, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def overlapping(self) -> bool:
        """True when some segments overlap (so the label map alone does not hold every segment exactly)."""
        return bool(self.overlap_masks)

    def segment_mask(self, label: int) -> np.ndarray:
        """Exact boolean mask of segment ``label`` (array order z, y, x)."""
        if label in self.overlap_masks:
            return self.overlap_masks[label]
        if label not in self.segments:
            raise KeyError(f"no segment with label {label}; labels: {sorted(self.segments)}")
        return self.labelmap.array == label

    def masks(self) -> dict[int, np.ndarray]:
        """Exact boolean mask of every segment (label -> mask)."""
        return {label: self.segment_mask(label) for label in sorted(self.segments)}

    def voxel_counts(self) -> dict[int, int]:
        """Number of voxels of every segment, counted on the exact masks."""
        counts = np.bincount(self.labelmap.array.ravel().astype(np.int64)) if self.labelmap.array.size else []
        out = {}
        for label in sorted(self.segments):
            if label in self.overlap_masks:
                out[label] = int(self.overlap_masks[label].sum())
            else:
                out[label] = int(counts[label]) if label < len(counts) else 0
        return out

    def volumes_ml(self) -> dict[int, float]:
        """Volume of every segment in mL (voxel count x voxel volume)."""
        vv = self.labelmap.voxel_volume_ml
        return {label: n * vv for label, n in self.voxel_counts().items()}

    def overlaps(self) -> dict[tuple[int, int], int]:
        """Pairs of overlapping labels -> number of shared voxels."""
        labels = sorted(self.overlap_masks)
        out = {}
        for i, a in enumerate(labels):
            for b in labels[i + 1:]:
                n = int(np.logical_and(self.overlap_masks[a], self.overlap_masks[b]).sum())
                if n:
                    out[(a, b)] = n
        return out

    def on_grid(self, reference: Image, resample: bool = False, option: str = "--resample",
                name: str = "segmentation", reference_name: str = "reference") -> Segmentation:
        """This segmentation on ``reference``'s grid.

        Same grid: ``self``. Same physical voxel centres (flipped/permuted axes, or a sub-grid such as a SEG that
        omits empty slices): exact nearest-neighbour re-indexing. Otherwise resampled (nearest neighbour) only
        when ``resample`` is true, else :class:`GeometryMismatchError` stating both geometries and ``option``.
        """
        from organsegbench.errors import GeometryMismatchError
        from organsegbench.io.geometry import describe_mismatch, resample_to, same_grid, same_space

        if same_grid(self.labelmap, reference):
            return self
        if not (resample or same_space(self.labelmap, reference) or is_subgrid(self.labelmap, reference)):
            raise GeometryMismatchError(
                f"the {name} and the {reference_name} are on different grids: {name} "
                f"{self.labelmap.geometry_string()}; {reference_name} {reference.geometry_string()} "
                f"(they differ in {_differing_fields(describe_mismatch(reference, self.labelmap))})",
                hint=f"resample the {name} onto the {reference_name} grid with {option} "
                     "(nearest neighbour; label values are never blended)")
        lm = resample_to(self.labelmap, reference, is_label=True)
        overlaps = {label: resample_to(self.labelmap.with_array(m.astype(np.uint8)), reference).array.astype(bool)
                    for label, m in self.overlap_masks.items()}
        return Segmentation(labelmap=lm, segments=self.segments, overlap_masks=overlaps,
                            metadata={**self.metadata, "resampled_to": reference.geometry_string()})

    @classmethod
    def from_masks(cls, grid: Image, masks: dict[int, np.ndarray], segments: dict[int, SegmentInfo],
                   metadata: dict[str, Any] | None = None) -> Segmentation:
        """Build a segmentation from exact per-segment masks, flattening overlaps by the module's policy."""
        max_label = max(masks, default=0)
        dtype = np.uint8 if max_label < 256 else (np.uint16 if max_label < 65536 else np.uint32)
        lm = np.zeros(grid.shape, dtype=dtype)
        cover = np.zeros(grid.shape, dtype=np.uint16)
        for label in sorted(masks):
            m = np.asarray(masks[label], dtype=bool)
            lm[m] = label
            cover += m
        overlap_masks: dict[int, np.ndarray] = {}
        if cover.size and cover.max() > 1:
            shared = cover > 1
            involved = [label for label in sorted(masks) if np.any(masks[label] & shared)]
            overlap_masks = {label: np.asarray(masks[label], dtype=bool) for label in involved}
        seg = cls(labelmap=grid.with_array(lm), segments=segments, overlap_masks=overlap_masks,
                  metadata=dict(metadata or {}))
        seg.flag_overlaps()
        return seg

    def flag_overlaps(self) -> None:
        """Record overlap partners in ``SegmentInfo.metadata["overlaps_with"]`` and log one warning."""
        if not self.overlap_masks:
            return
        pairs = self.overlaps()
        for a, b in pairs:
            self.segments[a].metadata.setdefault("overlaps_with", []).append(b)
            self.segments[b].metadata.setdefault("overlaps_with", []).append(a)
        desc = ", ".join(f"{self.segments[a].name}/{self.segments[b].name}: {n} voxels" for (a, b), n in pairs.items())
        log.warning("segments overlap (%s); the label map keeps the later segment in shared voxels, exact "
                    "masks are in Segmentation.overlap_masks / segment_mask()", desc)


def _differing_fields(mismatch: str) -> str:
    return ", ".join(part.split(" ")[0] for part in mismatch.split("; "))


def is_subgrid(small: Image, big: Image, tol_mm: float = 1e-2) -> bool:
    """True when every voxel centre of ``small`` is a voxel centre of ``big`` (same spacing and direction, the
    origin on ``big``'s lattice), so that moving ``small`` onto ``big`` loses nothing."""
    if not (np.allclose(small.spacing, big.spacing, atol=1e-3) and np.allclose(small.direction, big.direction,
                                                                                  atol=1e-4)):
        return False
    m = big.index_to_physical_matrix()
    idx = np.linalg.solve(m[:3, :3], np.asarray(small.origin) - m[:3, 3])
    if not np.allclose(idx, np.round(idx), atol=tol_mm / max(min(big.spacing), 1e-6)):
        return False
    lo = np.round(idx).astype(int)
    hi = lo + np.asarray(small.size) - 1
    return bool(np.all(lo >= 0) and np.all(hi < np.asarray(big.size)))


# ------------------------------------------------------------------------------------------------ sidecar
def sidecar_path(path: str | Path) -> Path:
    """``<name without .nii.gz/.nrrd/...>.segments.json`` beside ``path``."""
    p = Path(path)
    name = p.name
    for suffix in (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(name + ".segments.json")


def _read_sidecar(path: Path) -> dict[int, SegmentInfo]:
    sc = sidecar_path(path)
    if not sc.is_file():
        return {}
    try:
        data = json.loads(sc.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputFileError(f"segment sidecar {str(sc)!r} is not valid JSON ({exc})",
                             "fix or delete the sidecar file") from exc
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        return {}
    return {int(d["label"]): SegmentInfo.from_dict(d) for d in data.get("segments", [])}


# ------------------------------------------------------------------------------------------------ read / write
def _as_label_array(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(np.equal(np.mod(arr, 1), 0)):
            raise InputFileError(f"{str(path)!r} holds non-integer values, so it is not a label map",
                                 "pass a label map (integer voxel values, 0 = background)")
        arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise InputFileError(f"{str(path)!r} holds negative values ({int(arr.min())}), so it is not a label map",
                             "pass a label map (integer voxel values >= 0, 0 = background)")
    return arr


def read_segmentation(path: str | Path, vocabulary: Any = None) -> Segmentation:
    """Read a segmentation: NIfTI/NRRD/MetaImage label map (Slicer ``.seg.nrrd`` included) or DICOM SEG.

    Segment names come from, in order: the file itself (DICOM SEG descriptions, Slicer ``SegmentN_*`` header keys,
    the ``.segments.json`` sidecar written by :func:`write_segmentation`), the ``vocabulary`` (a name such as
    ``"total"`` or a Vocabulary object), else ``label_<n>``.

    Raises:
        InputFileError: missing, truncated or non-label-map file.
    """
    p = Path(path)
    fmt = detect_format(p)
    if fmt == "dicom-folder":
        from organsegbench.io.dicom_series import list_dicom_series

        segs = [s for s in list_dicom_series(p) if s.modality.upper() == "SEG"]
        if len(segs) != 1 or len(segs[0].files) != 1:
            raise InputFileError(f"{str(p)!r} is a folder; a segmentation is one file (DICOM SEG, NIfTI, NRRD)",
                                 "pass the DICOM SEG file itself")
        p, fmt = segs[0].files[0], "dicom"
    if fmt == "dicom" or is_dicom_file(p):
        from organsegbench.io.dicom_seg import read_dicom_seg

        return read_dicom_seg(p, vocabulary=vocabulary)
    if fmt == "nifti":
        check_nifti_integrity(p)
    if fmt == "nrrd":
        from organsegbench.io.slicer_nrrd import read_slicer_nrrd

        seg = read_slicer_nrrd(p, vocabulary=vocabulary)
        if seg is not None:
            return seg
    try:
        s = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        raise InputFileError(f"cannot read {fmt} file {str(p)!r}: {str(exc).strip().splitlines()[-1]}",
                             "check that the file is complete and in the format its name says") from exc
    if s.GetNumberOfComponentsPerPixel() != 1:
        raise InputFileError(f"{str(p)!r} has {s.GetNumberOfComponentsPerPixel()} components per voxel",
                             "pass a single-component label map (or a Slicer .seg.nrrd with segment headers)")
    img = image_from_sitk(s, p, source=str(p), format=fmt)
    return segmentation_from_image(img, vocabulary, known=_read_sidecar(p))


def segmentation_from_image(img: Image, vocabulary: Any = None, known: dict[int, SegmentInfo] | None = None
                            ) -> Segmentation:
    """Treat an already-read image as a label map (every non-zero value a segment), named as in
    :func:`read_segmentation`. Raises :class:`InputFileError` for non-integer or negative values."""
    source = Path(str(img.metadata.get("source", "image")))
    arr = _as_label_array(img.array, source)
    labels = [int(v) for v in np.unique(arr) if v != 0]
    segments = name_segments(labels, vocabulary, known=known)
    return Segmentation(labelmap=img.with_array(arr), segments=segments,
                        metadata={"source": str(source), "format": img.metadata.get("format", "")})


def write_segmentation(seg: Segmentation, path: str | Path, *, source_series_dir: str | Path | None = None,
                       **dicom_kwargs: Any) -> Path:
    """Write ``seg`` to NIfTI/NRRD/MetaImage (+ ``.segments.json`` sidecar), Slicer ``.seg.nrrd`` or DICOM SEG.

    ``.dcm`` output needs ``source_series_dir`` (the CT/MR series the SEG refers to); extra keyword arguments go
    to :func:`~organsegbench.io.dicom_seg.write_dicom_seg`. Overlapping segmentations can only be written to
    ``.seg.nrrd`` (layers) or DICOM SEG; the plain label-map formats raise rather than drop voxels.
    """
    p = Path(path)
    if p.name.lower().endswith(".dcm"):
        if source_series_dir is None:
            raise InputFileError(f"writing DICOM SEG {str(p)!r} needs the source image series",
                                 "pass source_series_dir=... (API) or --reference-series DIR (command line)")
        from organsegbench.io.dicom_seg import write_dicom_seg

        return write_dicom_seg(seg, source_series_dir, p, **dicom_kwargs)
    output_format(p)
    if p.name.lower().endswith(".seg.nrrd"):
        from organsegbench.io.slicer_nrrd import write_slicer_nrrd

        return write_slicer_nrrd(seg, p)
    if seg.overlapping:
        names = sorted({seg.segments[a].name for pair in seg.overlaps() for a in pair})
        raise InputFileError(f"segments {', '.join(names)} overlap and cannot all be kept in one label map {str(p)!r}",
                             "write a Slicer .seg.nrrd (layers) or a DICOM SEG (.dcm, with --reference-series), "
                             "which keep overlapping segments")
    from organsegbench.io.volumes import write_image

    write_image(seg.labelmap, p)
    write_sidecar(p, seg.segments)
    return p


def write_sidecar(path: str | Path, segments: dict[int, SegmentInfo]) -> Path:
    """Write the ``.segments.json`` sidecar (names, codes, colours) of label map ``path``; atomic (temp + rename)."""
    p = Path(path)
    payload = {"format": SIDECAR_FORMAT, "labelmap": p.name,
               "segments": [segments[k].to_dict() for k in sorted(segments)]}
    side = sidecar_path(p)
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(side)
    return side
