"""Reading and writing volumes, label maps, DICOM series and DICOM SEG; geometry helpers."""

from organsegbench.io.geometry import align_to, require_same_grid, resample_to, same_grid, same_space
from organsegbench.io.image import Image

__all__ = ["Image", "align_to", "require_same_grid", "resample_to", "same_grid", "same_space"]
