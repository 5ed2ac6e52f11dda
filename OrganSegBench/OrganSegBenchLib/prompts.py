"""A Markups ROI drawn in the viewer -> box prompt in voxel coordinates of the volume array.

The ROI's 8 corners (RAS, mm, including its parent transform) are mapped through the volume's RAS-to-IJK
matrix; the index-space bounding box is clipped to the grid. An ROI wholly outside the volume is an error that
names both extents, never a crash or an empty prompt. Per-slice boxes follow the engine's convention
(``organsegbench.prompts``): ``x`` = column ``i``, ``y`` = row ``j``, inclusive extents, one box per slice ``k``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from OrganSegBenchLib.nodes import ijk_to_ras


@dataclass(frozen=True)
class RoiBox:
    """Voxel-index box of an ROI in a volume: inclusive ``(k0, k1)``, ``(j0, j1)``, ``(i0, i1)``.

    ``clipped`` is True when part of the ROI lay outside the volume and was cut off.
    """

    k: tuple[int, int]
    j: tuple[int, int]
    i: tuple[int, int]
    clipped: bool

    def to_box3d(self, label: int = 1, name: str | None = None):
        """The engine's ``Box3D``."""
        from organsegbench.prompts.types import Box3D

        return Box3D(k0=self.k[0], k1=self.k[1], y0=float(self.j[0]), y1=float(self.j[1]), x0=float(self.i[0]),
                     x1=float(self.i[1]), label=label, name=name)

    def slice_boxes(self, label: int = 1, name: str | None = None) -> list:
        """One engine ``Box2D`` per slice ``k0..k1``."""
        return self.to_box3d(label, name).to_slices()


def roi_corners_ras(roi_node) -> np.ndarray:
    """The 8 corners of a Markups ROI in world RAS (mm): ROI axes, centre and parent transforms applied."""
    m = roi_node.GetObjectToWorldMatrix()  # ROI object frame (centre, possibly rotated axes) -> world RAS
    to_world = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
    size = np.asarray(roi_node.GetSize(), dtype=float)  # in the object frame; the matrix adds any scaling
    local = np.array([[*(np.asarray(signs) * size / 2), 1.0] for signs in itertools.product((-1, 1), repeat=3)])
    return (to_world @ local.T).T[:, :3]


def roi_to_voxel_box(roi_node, volume_node) -> RoiBox:
    """Voxel box of ``roi_node`` in ``volume_node`` (clipped to the grid).

    Raises:
        OrganSegBenchError: the ROI lies wholly outside the volume (message gives both RAS extents).
    """
    from organsegbench.errors import OrganSegBenchError

    if roi_node is None:
        raise OrganSegBenchError("no ROI selected", "draw a box with the ROI tool (Markups ROI) over the organ")
    corners = roi_corners_ras(roi_node)
    ras_to_ijk = np.linalg.inv(ijk_to_ras(volume_node))
    ijk = (ras_to_ijk @ np.c_[corners, np.ones(8)].T).T[:, :3]
    lo, hi = ijk.min(axis=0), ijk.max(axis=0)
    dims = np.array(volume_node.GetImageData().GetDimensions())  # (ni, nj, nk)
    lo_i, hi_i = np.ceil(lo - 1e-6).astype(int), np.floor(hi + 1e-6).astype(int)  # voxel centres inside the ROI
    thin = hi_i < lo_i  # thinner than a voxel along an axis: take the nearest voxel
    mid = np.round((lo + hi) / 2).astype(int)
    lo_i, hi_i = np.where(thin, mid, lo_i), np.where(thin, mid, hi_i)
    if np.any(hi_i < 0) or np.any(lo_i > dims - 1):
        vol_corners = (ijk_to_ras(volume_node) @ np.array(
            [[a, b, c, 1.0] for a in (0, dims[0] - 1) for b in (0, dims[1] - 1) for c in (0, dims[2] - 1)]).T).T
        raise OrganSegBenchError(
            f"ROI {roi_node.GetName()!r} (RAS {np.round(corners.min(0), 1).tolist()} to "
            f"{np.round(corners.max(0), 1).tolist()} mm) lies outside volume {volume_node.GetName()!r} (RAS "
            f"{np.round(vol_corners[:, :3].min(0), 1).tolist()} to {np.round(vol_corners[:, :3].max(0), 1).tolist()} mm)",
            "move the ROI over the volume (or choose the volume the ROI was drawn on)",
        )
    c_lo, c_hi = np.clip(lo_i, 0, dims - 1), np.clip(hi_i, 0, dims - 1)
    clipped = bool(np.any(c_lo != lo_i) or np.any(c_hi != hi_i))
    return RoiBox(k=(int(c_lo[2]), int(c_hi[2])), j=(int(c_lo[1]), int(c_hi[1])), i=(int(c_lo[0]), int(c_hi[0])),
                  clipped=clipped)


def roi_prompt_set(roi_node, volume_node, label: int = 1, name: str | None = None, per_slice: bool = True):
    """An engine ``PromptSet`` for a model run: per-slice 2D boxes (default) or one 3D box, with the protocol."""
    from organsegbench.prompts.types import PromptSet

    box = roi_to_voxel_box(roi_node, volume_node)
    dims = volume_node.GetImageData().GetDimensions()
    protocol = {"source": "slicer_markups_roi", "roi": roi_node.GetName(), "clipped": box.clipped}
    shape = (dims[2], dims[1], dims[0])
    if per_slice:
        return PromptSet(boxes=box.slice_boxes(label, name), protocol=protocol, image_shape=shape)
    return PromptSet(boxes3d=[box.to_box3d(label, name)], protocol=protocol, image_shape=shape)
