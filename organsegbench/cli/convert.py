"""``organsegbench convert IN OUT``: NIfTI/NRRD/MHA/DICOM/DICOM SEG -> NIfTI/NRRD/MHA/DICOM SEG."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DESCRIPTION = """Convert images and segmentations between formats.

  images:         NIfTI (.nii/.nii.gz), NRRD (.nrrd), MetaImage (.mha), DICOM file or series folder
                  -> NIfTI, NRRD or MetaImage
  segmentations:  label map (NIfTI/NRRD/MHA, Slicer .seg.nrrd) or DICOM SEG
                  -> NIfTI/NRRD/MHA (+ OUT.segments.json with names and codes), .seg.nrrd, or DICOM SEG (.dcm)

A DICOM SEG output references its source image series: pass it with --reference-series DIR (the label map must
be on that series' grid, or add --resample). With --reference-series and a NIfTI/NRRD output, the segmentation is
placed on the reference grid (exactly when the voxel centres coincide, e.g. a SEG that omits empty slices;
otherwise only with --resample, nearest neighbour).

Examples:
  organsegbench convert liver.dcm liver.nii.gz --reference-series ct_dicom/
  organsegbench convert seg.nii.gz seg.dcm --reference-series ct_dicom/ --vocabulary total
  organsegbench convert ct_dicom/ ct.nii.gz"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert`` sub-command."""
    p = subparsers.add_parser("convert", help="convert images and segmentations (NIfTI, NRRD, DICOM, DICOM SEG)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="input file or DICOM folder")
    p.add_argument("output", help="output file; the extension picks the format (.nii.gz, .nrrd, .seg.nrrd, .mha, "
                                  ".dcm = DICOM SEG)")
    p.add_argument("--reference-series", "--reference", dest="reference", metavar="DIR",
                   help="source image series (DICOM folder) of a segmentation; needed for DICOM SEG output. "
                        "For NIfTI/NRRD outputs any image file works as the target grid")
    p.add_argument("--series", metavar="UID",
                   help="SeriesInstanceUID to read when the input or reference DICOM folder holds several series")
    p.add_argument("--vocabulary", metavar="NAME", help="label vocabulary giving names/SNOMED codes (e.g. total)")
    p.add_argument("--resample", action="store_true",
                   help="resample onto the reference grid when the grids differ (nearest neighbour for labels)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--labels", action="store_true", help="treat the input as a label map")
    kind.add_argument("--image", action="store_true", help="treat the input as an intensity image")
    p.add_argument("--seg-type", choices=("binary", "labelmap"), default="binary",
                   help="DICOM SEG type (binary: widest viewer support; labelmap: DICOM Label Map SEG)")
    p.add_argument("--seg-compression", choices=("jpeg2000", "rle", "jpegls"), default=None,
                   help="lossless compression of a DICOM SEG (default: none, read by every SEG tool; rle/jpegls "
                        "need --seg-type labelmap)")
    p.add_argument("--algorithm", metavar="NAME", help="algorithm name recorded in a DICOM SEG")
    p.set_defaults(func=run)


def _input_is_segmentation(args: argparse.Namespace) -> tuple[bool, Any]:
    """(is segmentation?, image already read or None)."""
    from organsegbench.cli.info import _is_segmentation
    from organsegbench.io.volumes import detect_format, is_label_like, read_image

    path = Path(args.input)
    if _is_segmentation(path, args):
        return True, None
    img = read_image(path, series_uid=args.series)
    if args.image:
        return False, img
    if detect_format(path) in ("dicom", "dicom-folder"):  # DICOM images are images unless --labels
        return bool(args.labels), img
    return is_label_like(img) or args.output.lower().endswith(".dcm"), img


def convert(args: argparse.Namespace) -> Path:
    """Do the conversion described by ``args``; returns the written path."""
    from organsegbench.errors import InputFileError
    from organsegbench.io.geometry import align_to, resample_to
    from organsegbench.io.segmentation import read_segmentation, segmentation_from_image, write_segmentation
    from organsegbench.io.volumes import detect_format, output_format, read_image, write_image

    out = Path(args.output)
    to_seg = out.name.lower().endswith(".dcm")
    if not to_seg:
        output_format(out)
    is_seg, img = _input_is_segmentation(args)
    if to_seg and args.reference is None:
        raise InputFileError(f"a DICOM SEG output ({str(out)!r}) must reference its source image series",
                             "add --reference-series DIR (the DICOM folder of the CT/MR the labels belong to)")
    reference = read_image(args.reference, series_uid=args.series) if args.reference and not to_seg else None
    if not is_seg:
        if to_seg:
            raise InputFileError(f"{args.input!r} is an image, not a label map; DICOM image output is not supported",
                                 "convert a label map (or pass --labels) to a DICOM SEG, or write .nii.gz/.nrrd")
        if reference is not None:  # exact re-indexing when the voxels coincide; linear resampling when asked
            img = resample_to(img, reference, is_label=False) if args.resample else align_to(
                img, reference, name_moving="input", name_reference="reference")
        return write_image(img, out)
    seg = segmentation_from_image(img, args.vocabulary) if img is not None and detect_format(args.input) in (
        "dicom", "dicom-folder") else read_segmentation(args.input, vocabulary=args.vocabulary)
    if to_seg:
        return write_segmentation(seg, out, source_series_dir=args.reference, series_uid=args.series,
                                  resample=args.resample, seg_type=args.seg_type, algorithm_name=args.algorithm,
                                  compression=args.seg_compression)
    if reference is not None:
        seg = seg.on_grid(reference, resample=args.resample, name="input segmentation",
                          reference_name="reference")
    return write_segmentation(seg, out)


def run(args: argparse.Namespace) -> int:
    """Convert ``args.input`` to ``args.output``."""
    if not getattr(args, "verbose", False):  # highdicom narrates every copied module at INFO
        logging.getLogger("highdicom").setLevel(logging.WARNING)
    path = convert(args)
    print(f"wrote {path}")  # noqa: T201
    return 0
