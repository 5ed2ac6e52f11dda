"""Crop/uncrop: run a model on a region of interest (a 3D box in input voxel indices) and paste the result back
onto the full input grid. The cropped image keeps the physical geometry (its origin is the physical position of
the ROI's first voxel), so 3D models that resample (TotalSegmentator, MOOSE) see the right spacing and position.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from organsegbench.errors import OrganSegBenchError
from organsegbench.io.image import Image
from organsegbench.prompts import Box3D, PromptSet

if TYPE_CHECKING:
    from organsegbench.models.protocol import ModelResult


def roi_bounds(roi: Box3D, shape: tuple[int, int, int]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Inclusive-exclusive integer bounds ``(lo, hi)`` (z, y, x) of ``roi`` clipped to the image."""
    nz, ny, nx = shape
    lo = (max(0, int(np.floor(roi.k0))), max(0, int(np.floor(roi.y0))), max(0, int(np.floor(roi.x0))))
    hi = (min(nz, int(np.ceil(roi.k1)) + 1), min(ny, int(np.ceil(roi.y1)) + 1), min(nx, int(np.ceil(roi.x1)) + 1))
    if any(h <= lo_ for lo_, h in zip(lo, hi, strict=True)):
        raise OrganSegBenchError(
            f"region of interest k {roi.k0}:{roi.k1}, x {roi.x0}:{roi.x1}, y {roi.y0}:{roi.y1} lies outside the "
            f"image (shape z,y,x = {shape})", "give --roi K0:K1,X0,Y0,X1,Y1 in voxel indices of the input")
    return lo, hi


def crop_image(image: Image, lo: tuple[int, int, int], hi: tuple[int, int, int]) -> Image:
    """Sub-image ``array[lo:hi]`` with its origin moved to the physical position of voxel ``lo``."""
    arr = image.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    origin = image.index_to_physical_matrix() @ np.array([lo[2], lo[1], lo[0], 1.0])
    return Image(np.ascontiguousarray(arr), spacing=image.spacing, origin=tuple(origin[:3]),
                 direction=image.direction.copy(), metadata=dict(image.metadata))


def shift_prompts(prompts: PromptSet, lo: tuple[int, int, int]) -> PromptSet:
    """Prompts in input indices -> indices of the cropped image."""
    k, y, x = lo
    return replace(
        prompts,
        boxes=[replace(b, slice=b.slice - k, x0=b.x0 - x, x1=b.x1 - x, y0=b.y0 - y, y1=b.y1 - y) for b in prompts.boxes],
        points=[replace(p, slice=p.slice - k, x=p.x - x, y=p.y - y) for p in prompts.points],
        boxes3d=[replace(b, k0=b.k0 - k, k1=b.k1 - k, x0=b.x0 - x, x1=b.x1 - x, y0=b.y0 - y, y1=b.y1 - y)
                 for b in prompts.boxes3d],
        image_shape=None,
    )


def segment_roi(model: Any, image: Image, prompts: PromptSet | None, roi: Box3D, **kwargs: Any) -> ModelResult:
    """Run ``model.segment`` on the ROI crop and paste the label map into a zero map on the full grid."""
    from organsegbench.models.protocol import ModelResult

    lo, hi = roi_bounds(roi, image.shape)
    out = kwargs.pop("out", None)
    sr = kwargs.pop("slice_range", None)
    if sr is not None:
        sr = (sr[0] - lo[0], sr[1] - lo[0])
    sub = crop_image(image, lo, hi)
    res = model.segment(sub, shift_prompts(prompts or PromptSet(), lo), slice_range=sr, **kwargs)
    full = np.zeros(image.shape, dtype=res.labelmap.array.dtype)
    full[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = res.labelmap.array
    lab = image.with_array(full)
    lab.metadata = {}
    prov = dict(res.provenance)
    prov["roi"] = {"lo_zyx": list(lo), "hi_zyx_exclusive": list(hi)}
    from organsegbench.provenance import image_record

    prov["input"] = image_record(image)  # the full image the ROI was cut from
    if prompts is not None:
        prov["prompts"] = prompts.to_dict()  # as given, in input indices
    result = ModelResult(lab, res.labels, prov)
    if out is not None:
        try:
            result.write(out)
        except BaseException:
            from pathlib import Path

            Path(out).unlink(missing_ok=True)
            raise
    return result
