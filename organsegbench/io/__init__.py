"""Reading and writing volumes, label maps, DICOM series and DICOM SEG; geometry helpers."""

from organsegbench.io.dicom_seg import read_dicom_seg, write_dicom_seg
from organsegbench.io.dicom_series import (
    DicomSeries,
    list_dicom_series,
    read_dicom_series,
    write_dicom_series,
)
from organsegbench.io.geometry import align_to, require_same_grid, resample_to, same_grid, same_space
from organsegbench.io.image import Image
from organsegbench.io.segment_info import SegmentInfo
from organsegbench.io.segmentation import (
    Segmentation,
    read_segmentation,
    segmentation_from_image,
    write_segmentation,
)
from organsegbench.io.volumes import read_image, write_image

__all__ = [
    "DicomSeries", "Image", "SegmentInfo", "Segmentation", "align_to", "list_dicom_series", "read_dicom_seg",
    "read_dicom_series", "read_image", "read_segmentation", "require_same_grid", "resample_to", "same_grid",
    "same_space", "segmentation_from_image", "write_dicom_seg", "write_dicom_series", "write_image", "write_segmentation",
]
