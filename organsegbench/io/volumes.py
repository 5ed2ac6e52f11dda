"""Read and write volumes: NIfTI, NRRD, MetaImage, single DICOM files and DICOM series folders.

Everything comes back as :class:`~organsegbench.io.image.Image` (array ``(z, y, x)``, geometry in ITK/LPS order)
with ``metadata`` holding at least ``source`` (the path read) and ``format``; DICOM inputs add ``series_uid``,
``modality``, ``study_uid`` and ``frame_of_reference_uid`` where the files have them.

Files are read with SimpleITK. Because ITK happily returns a partially filled volume from a truncated ``.nii.gz``,
NIfTI files are checked first: the gzip stream must end properly and hold as many bytes as the header promises.
"""

from __future__ import annotations

import gzip
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from organsegbench.errors import InputFileError
from organsegbench.io.image import Image

log = logging.getLogger(__name__)

#: suffix -> format name, longest suffixes first
_FORMATS: tuple[tuple[str, str], ...] = (
    (".seg.nrrd", "nrrd"),
    (".nii.gz", "nifti"),
    (".nii", "nifti"),
    (".nrrd", "nrrd"),
    (".nhdr", "nrrd"),
    (".mha", "metaimage"),
    (".mhd", "metaimage"),
    (".dcm", "dicom"),
)
WRITABLE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def detect_format(path: str | Path) -> str:
    """Return ``"nifti"``, ``"nrrd"``, ``"metaimage"``, ``"dicom"`` or ``"dicom-folder"`` for ``path``.

    Raises:
        InputFileError: the path does not exist or its format is not recognised.
    """
    p = Path(path)
    if not p.exists():
        hint = "check the path (relative paths are resolved from the current folder)"
        if p.parent.is_dir():
            near = sorted(x.name for x in p.parent.iterdir() if x.name.split(".")[0] == p.name.split(".")[0])
            if near:
                hint = f"files with a similar name in {p.parent}: {', '.join(near[:5])}"
        raise InputFileError(f"input file {str(p)!r} does not exist", hint)
    if p.is_dir():
        return "dicom-folder"
    name = p.name.lower()
    for suffix, fmt in _FORMATS:
        if name.endswith(suffix):
            return fmt
    if is_dicom_file(p):
        return "dicom"
    raise InputFileError(
        f"cannot tell the format of {str(p)!r} from its name or content",
        "use a NIfTI (.nii/.nii.gz), NRRD (.nrrd/.nhdr), MetaImage (.mha/.mhd) or DICOM file, or a DICOM folder",
    )


def is_dicom_file(path: str | Path) -> bool:
    """True when the file carries the DICOM preamble magic ``DICM`` at byte 128."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------ NIfTI integrity
def _nifti_expected_bytes(header: bytes) -> int | None:
    """Bytes (offset of the voxel data + voxel data) a NIfTI-1/2 header promises; None if not a NIfTI header."""
    if len(header) < 348:
        return None
    for endian in ("<", ">"):
        (sizeof_hdr,) = struct.unpack(endian + "i", header[:4])
        if sizeof_hdr == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            (bitpix,) = struct.unpack(endian + "h", header[72:74])
            (vox_offset,) = struct.unpack(endian + "f", header[108:112])
            break
        if sizeof_hdr == 540 and len(header) >= 540:
            (bitpix,) = struct.unpack(endian + "h", header[14:16])
            dims = struct.unpack(endian + "8q", header[16:80])
            (vox_offset,) = struct.unpack(endian + "q", header[168:176])
            break
    else:
        return None
    ndim = int(dims[0])
    if not 1 <= ndim <= 7:
        return None
    n_vox = int(np.prod([max(1, int(d)) for d in dims[1:ndim + 1]]))
    return int(vox_offset) + n_vox * int(bitpix) // 8


def check_nifti_integrity(path: str | Path) -> None:
    """Raise :class:`InputFileError` when a NIfTI file is truncated, corrupt or not NIfTI at all.

    Streams ``.gz`` files completely (so a missing end-of-stream marker or a CRC error is caught) and compares
    the number of bytes with what the header promises.
    """
    p = Path(path)
    fix = "re-download or re-export the file; a partial copy or an interrupted write leaves it truncated"
    try:
        if p.name.lower().endswith(".gz"):
            total, head = 0, b""
            with gzip.open(p, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    if len(head) < 540:
                        head += chunk[: 540 - len(head)]
                    total += len(chunk)
        else:
            total = p.stat().st_size
            with open(p, "rb") as fh:
                head = fh.read(540)
    except (EOFError, OSError, zlib.error) as exc:
        raise InputFileError(f"NIfTI file {str(p)!r} is truncated or corrupt ({exc})", fix) from exc
    expected = _nifti_expected_bytes(head)
    if expected is None:
        raise InputFileError(f"{str(p)!r} is not a NIfTI file (no valid NIfTI-1/2 header)",
                             "check that the file really is NIfTI; rename it if it has another format")
    if total < expected:
        raise InputFileError(
            f"NIfTI file {str(p)!r} is truncated: the header promises {expected} bytes, the file holds {total}", fix)


# ------------------------------------------------------------------------------------------------ read / write
def image_from_sitk(img: sitk.Image, path: str | Path, **metadata: object) -> Image:
    """:meth:`Image.from_sitk` with its refusals (4D, multi-component) turned into :class:`InputFileError`."""
    try:
        return Image.from_sitk(img, **metadata)
    except ValueError as exc:
        raise InputFileError(f"{str(path)!r}: {exc}",
                             "pass a single 3D volume (one time point, one channel); split 4D/RGB data first"
                             ) from exc


def _read_with_sitk(path: Path, fmt: str) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        raise InputFileError(f"cannot read {fmt} file {str(path)!r}: {detail}",
                             "check that the file is complete and in the format its name says") from exc


def read_image(path: str | Path, series_uid: str | None = None) -> Image:
    """Read a volume from NIfTI, NRRD, MetaImage, a single DICOM file or a DICOM folder.

    Args:
        path: file or DICOM folder.
        series_uid: for a DICOM folder holding several image series, the SeriesInstanceUID to read.

    Returns:
        The :class:`Image` (spacing/origin in mm, LPS) with ``metadata["source"]`` and ``metadata["format"]``.

    Raises:
        InputFileError: missing, truncated, corrupt or unsupported file.
        AmbiguousInputError: a DICOM folder with several series and no ``series_uid``.
    """
    p = Path(path)
    fmt = detect_format(p)
    if fmt == "dicom-folder":
        from organsegbench.io.dicom_series import read_dicom_series

        return read_dicom_series(p, series_uid=series_uid)
    if fmt == "nifti":
        check_nifti_integrity(p)
    if fmt == "dicom":
        from organsegbench.io.dicom_series import dicom_file_metadata

        meta = dicom_file_metadata(p)
        if meta.get("modality") == "SEG":
            raise InputFileError(f"{str(p)!r} is a DICOM SEG (a segmentation), not an image",
                                 "read it with read_segmentation() / `organsegbench info` instead")
        img = image_from_sitk(_read_with_sitk(p, "DICOM"), p, source=str(p), format=fmt, **meta)
        return img
    sitk_img = _read_with_sitk(p, fmt)
    img = image_from_sitk(sitk_img, p, source=str(p), format=fmt)
    header = {k: sitk_img.GetMetaData(k) for k in sitk_img.GetMetaDataKeys()}
    if header:
        img.metadata["header"] = header
    return img


def output_format(path: str | Path) -> str:
    """Format name for an output path (``nifti``, ``nrrd``, ``metaimage``); InputFileError when not writable."""
    name = Path(path).name.lower()
    for suffix in WRITABLE_SUFFIXES:
        if name.endswith(suffix):
            return dict(_FORMATS)[suffix]
    raise InputFileError(f"cannot write {str(path)!r}: unsupported output extension",
                         f"use one of {', '.join(WRITABLE_SUFFIXES)} (or .dcm for a DICOM SEG)")


def write_image(img: Image, path: str | Path, header: dict[str, str] | None = None) -> Path:
    """Write ``img`` to NIfTI, NRRD or MetaImage (compressed), keeping spacing, origin and direction.

    Args:
        img: the image to write.
        path: output path; the extension picks the format.
        header: extra string key/value pairs for the file header (NRRD/MetaImage keep them; NIfTI ignores them).

    Returns:
        The written path.
    """
    p = Path(path)
    output_format(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    s = img.to_sitk()
    for key, value in (header or {}).items():
        s.SetMetaData(key, str(value))
    try:
        sitk.WriteImage(s, str(p), True)
    except RuntimeError as exc:
        raise InputFileError(f"cannot write {str(p)!r}: {str(exc).strip().splitlines()[-1]}",
                             "check that the folder is writable and the disk is not full") from exc
    log.debug("wrote %s (%s)", p, img.geometry_string())
    return p


def orientation_code(img: Image) -> str:
    """Three-letter orientation code of the grid axes, as SimpleITK's ``DICOMOrientImageFilter`` names it.

    Each letter is the patient direction the i, j, k axis points *towards* (DICOM convention): an identity
    direction is ``LPS``; a NIfTI-style grid with flipped x and y is ``RAS``.
    """
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
        tuple(float(v) for v in img.direction.ravel()))


def is_label_like(img: Image, max_labels: int = 255) -> bool:
    """Heuristic: integer (or bool) dtype with at most ``max_labels`` distinct non-negative values."""
    arr = img.array
    if arr.dtype == bool:
        return True
    if not np.issubdtype(arr.dtype, np.integer) or arr.size == 0:
        return False
    if arr.min() < 0:
        return False
    sample = arr if arr.size <= 4_000_000 else arr.ravel()[:: max(1, arr.size // 4_000_000)]
    if np.unique(sample).size > max_labels:
        return False
    return np.unique(arr).size <= max_labels
