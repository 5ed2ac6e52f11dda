"""Find the DICOM SEG files that segment a given CT/MR series (their ``ReferencedSeriesSequence`` names it),
without a DICOM database: headers only, pixel data never read."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def referenced_series_uids(path: str | Path) -> set[str]:
    """SeriesInstanceUIDs a DICOM SEG references (empty for non-SEG or unreadable files)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=False)
    except (InvalidDicomError, OSError, EOFError) as exc:
        logger.debug("skipping %s: %s", path, exc)
        return set()
    if getattr(ds, "Modality", None) != "SEG":
        return set()
    uids = {item.SeriesInstanceUID for item in getattr(ds, "ReferencedSeriesSequence", [])
            if "SeriesInstanceUID" in item}
    for frame in getattr(ds, "PerFrameFunctionalGroupsSequence", [])[:1]:  # some writers only fill DerivationImage
        for deriv in getattr(frame, "DerivationImageSequence", []):
            for src in getattr(deriv, "SourceImageSequence", []):
                if "SeriesInstanceUID" in src:
                    uids.add(src.SeriesInstanceUID)
    return uids


def series_uid_of(folder: str | Path) -> str:
    """SeriesInstanceUID of the first DICOM file in ``folder`` (InputFileError when it holds none)."""
    import pydicom

    from organsegbench.errors import InputFileError

    for p in sorted(Path(folder).iterdir()):
        if p.is_file():
            try:
                return str(pydicom.dcmread(str(p), stop_before_pixels=True).SeriesInstanceUID)
            except Exception:  # not a DICOM file: keep looking
                continue
    raise InputFileError(f"no DICOM file in {folder}", "choose the folder holding the CT/MR series")


def find_segmentations_for_series(series_uid: str, search: str | Path, recursive: bool = True) -> list[Path]:
    """DICOM SEG files under ``search`` that reference ``series_uid`` (sorted by path)."""
    root = Path(search)
    files = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in files if p.is_file() and series_uid in referenced_series_uids(p))
