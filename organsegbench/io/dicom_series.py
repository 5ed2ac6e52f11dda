"""DICOM series folders: list the series a folder holds, read one as an :class:`Image`, write a test series.

Folders are scanned recursively with pydicom (headers only). Image series are read with SimpleITK/GDCM, which
decodes uncompressed, JPEG, JPEG-LS and JPEG 2000 transfer syntaxes. Non-image objects (SEG, SR, RT structure sets,
presentation states, registrations) are listed but never read as images.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from organsegbench.errors import AmbiguousInputError, InputFileError
from organsegbench.io.image import Image

log = logging.getLogger(__name__)

#: modalities of DICOM objects that are not pixel images of the patient
NON_IMAGE_MODALITIES = frozenset({"SEG", "SR", "RTSTRUCT", "RTPLAN", "RTDOSE", "KO", "PR", "REG", "RWV", "DOC"})
_TAGS = ["SeriesInstanceUID", "SeriesDescription", "SeriesNumber", "Modality", "StudyInstanceUID",
         "FrameOfReferenceUID", "ImagePositionPatient", "ImageOrientationPatient", "InstanceNumber", "SOPClassUID",
         "PatientID"]


@dataclass
class DicomSeries:
    """One series found in a folder.

    Attributes:
        uid: SeriesInstanceUID.
        description: SeriesDescription ("" when absent).
        modality: Modality (CT, MR, SEG, ...).
        files: the files of the series, sorted along the slice normal (image series) or by name.
        number: SeriesNumber when present.
        study_uid, frame_of_reference_uid: as in the files ("" when absent).
    """

    uid: str
    description: str = ""
    modality: str = ""
    files: list[Path] = field(default_factory=list)
    number: int | None = None
    study_uid: str = ""
    frame_of_reference_uid: str = ""

    @property
    def is_image(self) -> bool:
        """True for series of pixel images (not SEG, SR, RTSTRUCT, ...)."""
        return self.modality.upper() not in NON_IMAGE_MODALITIES

    def summary(self) -> str:
        """One line: UID, description, modality and number of files."""
        desc = self.description or "(no description)"
        uid = self.uid or '(no SeriesInstanceUID: select it with --series "")'
        return f"{uid}  {desc!r}  {self.modality or '?'}  {len(self.files)} file(s)"


def _slice_key(ds: pydicom.Dataset, name: str) -> tuple[float, int, str]:
    try:
        iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        pos = float(np.dot(np.asarray(ds.ImagePositionPatient, dtype=float), normal))
    except (AttributeError, ValueError, TypeError):
        pos = 0.0
    return (pos, int(ds.get("InstanceNumber") or 0), name)


def list_dicom_series(folder: str | Path, include_non_image: bool = True) -> list[DicomSeries]:
    """List the DICOM series under ``folder`` (recursively), files sorted along the slice normal.

    Args:
        folder: a folder of DICOM files (other files are ignored).
        include_non_image: also list SEG/SR/RTSTRUCT/... series.

    Raises:
        InputFileError: the folder does not exist or holds no DICOM file.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputFileError(f"DICOM folder {str(root)!r} does not exist", "check the path")
    found: dict[str, tuple[DicomSeries, list[tuple[tuple[float, int, str], Path]]]] = {}
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=_TAGS)
        except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError, EOFError):
            continue
        if "SOPClassUID" not in ds and "Modality" not in ds:  # a DICOMDIR or a stray fragment, not an instance
            continue
        uid = str(ds.get("SeriesInstanceUID", "") or "")  # anonymised files may have none: grouped as ""
        if uid not in found:
            number = ds.get("SeriesNumber")
            found[uid] = (DicomSeries(uid=uid, description=str(ds.get("SeriesDescription", "") or ""),
                                      modality=str(ds.get("Modality", "") or ""),
                                      number=int(number) if number not in (None, "") else None,
                                      study_uid=str(ds.get("StudyInstanceUID", "") or ""),
                                      frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "") or "")), [])
        found[uid][1].append((_slice_key(ds, f.name), f))
    if not found:
        raise InputFileError(f"no DICOM files found in {str(root)!r}",
                             "point to the folder that holds the .dcm files of one series")
    out = []
    for series, keyed in found.values():
        series.files = [p for _, p in sorted(keyed, key=lambda kp: kp[0])]
        if include_non_image or series.is_image:
            out.append(series)
    return sorted(out, key=lambda s: (s.number if s.number is not None else 1 << 30, s.uid))


def select_series(folder: str | Path, series_uid: str | None = None) -> DicomSeries:
    """Pick one image series from ``folder``.

    Raises:
        AmbiguousInputError: several image series and no ``series_uid``; the message lists them.
        InputFileError: no image series, or ``series_uid`` not present.
    """
    all_series = list_dicom_series(folder)
    images = [s for s in all_series if s.is_image]
    if series_uid is not None:
        match = [s for s in all_series if s.uid == series_uid]
        if not match:
            listing = "\n".join("  " + s.summary() for s in all_series)
            raise InputFileError(f"series {series_uid!r} is not in {str(folder)!r}; it holds:\n{listing}",
                                 "pass one of the UIDs listed above with series_uid / --series")
        return match[0]
    if not images:
        listing = "\n".join("  " + s.summary() for s in all_series)
        raise InputFileError(f"{str(folder)!r} holds no image series, only:\n{listing}",
                             "point to a folder with CT/MR images (a DICOM SEG is read with read_segmentation)")
    if len(images) > 1:
        listing = "\n".join("  " + s.summary() for s in images)
        raise AmbiguousInputError(f"{str(folder)!r} holds {len(images)} image series:\n{listing}",
                                  "say which one to read with series_uid=... (API) or --series UID (command line)")
    return images[0]


def dicom_file_metadata(path: str | Path) -> dict[str, str]:
    """Series/study identifiers and modality of one DICOM file (empty values dropped)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise InputFileError(f"{str(path)!r} is not a readable DICOM file ({exc})",
                             "check that the file is complete") from exc
    meta = {"series_uid": ds.get("SeriesInstanceUID", ""), "modality": ds.get("Modality", ""),
            "study_uid": ds.get("StudyInstanceUID", ""), "frame_of_reference_uid": ds.get("FrameOfReferenceUID", ""),
            "series_description": ds.get("SeriesDescription", "")}
    return {k: str(v) for k, v in meta.items() if v}


def read_dicom_series(folder: str | Path, series_uid: str | None = None) -> Image:
    """Read one image series of ``folder`` as an :class:`Image` (JPEG 2000 and other compressions included).

    Raises:
        AmbiguousInputError: several image series and no ``series_uid``.
        InputFileError: no image series, unknown ``series_uid``, or undecodable pixel data.
    """
    series = select_series(folder, series_uid)
    if not series.is_image:
        raise InputFileError(f"series {series.uid} in {str(folder)!r} is a {series.modality} object, not an image",
                             "read it with read_segmentation() or pick an image series")
    names = [str(f) for f in series.files]
    try:
        if len(names) == 1:
            img = sitk.ReadImage(names[0])
        else:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(names)
            img = reader.Execute()
    except RuntimeError as exc:
        raise InputFileError(f"cannot read DICOM series {series.uid} in {str(folder)!r}: "
                             f"{str(exc).strip().splitlines()[-1]}",
                             "check that the files are complete; compressed series need GDCM (python-gdcm)") from exc
    meta = {"source": str(folder), "format": "dicom-series", "series_uid": series.uid, "modality": series.modality,
            "series_description": series.description, "study_uid": series.study_uid,
            "frame_of_reference_uid": series.frame_of_reference_uid, "files": names}
    from organsegbench.io.volumes import image_from_sitk

    return image_from_sitk(img, folder, **meta)


def write_dicom_series(img: Image, folder: str | Path, *, series_uid: str | None = None,
                       study_uid: str | None = None, frame_of_reference_uid: str | None = None,
                       modality: str = "CT", series_description: str = "OrganSegBench series",
                       series_number: int = 1, patient_id: str = "ANON", jpeg2000: bool = False) -> list[Path]:
    """Write an integer volume as a single-frame DICOM series (CT Image Storage or MR Image Storage).

    Mostly for tests and for turning a NIfTI CT into something a DICOM SEG can reference. Pixel values must fit
    int16 (CT values are stored as Hounsfield units with slope 1, intercept 0).

    Args:
        jpeg2000: store the pixels JPEG 2000 lossless compressed (needs pylibjpeg-openjpeg).

    Returns:
        The written files, one per slice, in slice order.
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import (
        CTImageStorage,
        ExplicitVRLittleEndian,
        JPEG2000Lossless,
        MRImageStorage,
        generate_uid,
    )

    arr = np.asarray(img.array)
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise ValueError(f"write_dicom_series needs an integer volume; got dtype {arr.dtype}")
    if arr.size and (arr.min() < -32768 or arr.max() > 32767):
        raise ValueError("pixel values must fit int16 (-32768..32767)")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_of_reference_uid = frame_of_reference_uid or generate_uid()
    sop_class = CTImageStorage if modality.upper() == "CT" else MRImageStorage
    d = img.direction
    files = []
    for k in range(arr.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = frame_of_reference_uid
        ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = patient_id, f"{patient_id}^", "", ""
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "", ""
        ds.StudyDate, ds.StudyTime, ds.Manufacturer = "20260101", "120000", "OrganSegBench"
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber = modality.upper(), series_description, series_number
        ds.InstanceNumber = k + 1
        pos = np.asarray(img.origin) + k * img.spacing[2] * d[:, 2]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*d[:, 0], *d[:, 1])]
        ds.PixelSpacing = [f"{img.spacing[1]:.6f}", f"{img.spacing[0]:.6f}"]  # row spacing (y), column spacing (x)
        ds.SliceThickness = f"{img.spacing[2]:.6f}"
        ds.Rows, ds.Columns = arr.shape[1], arr.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = "0", "1"
        if modality.upper() == "CT":
            ds.RescaleType = "HU"
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.PixelData = arr[k].astype(np.int16).tobytes()
        if jpeg2000:
            ds.compress(JPEG2000Lossless, arr[k].astype(np.int16))
        path = out / f"{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files
