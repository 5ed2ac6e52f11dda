"""Prompts derived from a reference mask for benchmarking, under an explicit protocol recorded with the result.

Protocol steps, in order:

1. **Binarise** the reference: ``mask == label`` when ``label`` is set, otherwise ``mask > threshold``
   (a lossy JPEG mask stored as 0/255 needs ``threshold=127``; never box the raw grey values).
2. **Boxes**: ``per_slice`` = one box around all foreground of a slice; ``per_component`` = one box per 2D
   connected component of a slice (components smaller than ``min_component_voxels`` dropped).
3. **Margin**: each box grows by ``margin_mm`` on every side (converted with the in-plane spacing).
4. **Jitter**: each box edge moves by a uniform random offset in ``[-jitter_mm, +jitter_mm]`` drawn from
   ``numpy.random.default_rng(seed)``.
5. **Slices**: ``gt`` = only slices with foreground; ``extent`` = every slice of the 3D bounding box's
   extent (slices without foreground get the 3D box's in-plane extent, so false positives there count);
   ``box3d`` = the 3D box's in-plane extent on every slice of its extent; ``key`` = only the slice with the
   largest foreground area (the key slice for video propagation).

Boxes are clipped to the image. All parameters go into ``PromptSet.protocol``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from organsegbench.errors import EmptyMaskError, OrganSegBenchError
from organsegbench.prompts.types import Box2D, PromptSet, clip_box

SliceMode = Literal["gt", "extent", "box3d", "key"]
BoxMode = Literal["per_slice", "per_component"]


@dataclass(frozen=True)
class PromptProtocol:
    """Parameters of prompt derivation (see the module docstring); recorded verbatim with results."""

    label: int | None = None
    threshold: float = 0.0
    boxes: BoxMode = "per_slice"
    margin_mm: float = 0.0
    jitter_mm: float = 0.0
    seed: int = 0
    slices: SliceMode = "gt"
    min_component_voxels: int = 1

    def __post_init__(self) -> None:
        if self.boxes not in ("per_slice", "per_component"):
            raise OrganSegBenchError(f"unknown box mode {self.boxes!r}", "use per_slice or per_component")
        if self.slices not in ("gt", "extent", "box3d", "key"):
            raise OrganSegBenchError(f"unknown slice mode {self.slices!r}", "use gt, extent, box3d or key")
        if self.margin_mm < 0 or self.jitter_mm < 0:
            raise OrganSegBenchError(f"margin_mm ({self.margin_mm}) and jitter_mm ({self.jitter_mm}) must be >= 0")


def binarise(mask: np.ndarray, protocol: PromptProtocol) -> np.ndarray:
    """Step 1: a boolean foreground mask (``== label`` or ``> threshold``)."""
    mask = np.asarray(mask)
    return mask == protocol.label if protocol.label is not None else mask > protocol.threshold


def _bbox2d(fg: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(fg.any(axis=1))
    cols = np.flatnonzero(fg.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _slice_boxes(fg2d: np.ndarray, protocol: PromptProtocol) -> list[tuple[int, int, int, int]]:
    if protocol.boxes == "per_slice":
        return [_bbox2d(fg2d)]
    from scipy import ndimage

    lab, n = ndimage.label(fg2d)
    out = []
    for sl in ndimage.find_objects(lab):
        if sl is None:
            continue
        comp = lab[sl] > 0
        if comp.sum() < protocol.min_component_voxels:
            continue
        out.append((sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1))
    return out


def prompts_from_mask(mask: np.ndarray, spacing_zyx: tuple[float, float, float],
                      protocol: PromptProtocol | None = None, name: str | None = None,
                      out_label: int = 1) -> PromptSet:
    """Derive box prompts from a reference mask ``(z, y, x)`` with voxel ``spacing_zyx`` in mm.

    Raises :class:`EmptyMaskError` when the binarised mask is empty (there is nothing to prompt).
    """
    protocol = protocol or PromptProtocol()
    fg = binarise(mask, protocol)
    if fg.ndim != 3:
        raise OrganSegBenchError(f"reference mask must be 3D (z, y, x); got shape {fg.shape}")
    if not fg.any():
        what = f"label {protocol.label}" if protocol.label is not None else f"values > {protocol.threshold}"
        raise EmptyMaskError(f"reference mask has no foreground ({what}); no prompt can be derived",
                             "check PromptProtocol.label / .threshold against the values the mask holds "
                             "(e.g. the vocabulary label of the structure)")
    rng = np.random.default_rng(protocol.seed)
    _, sy, sx = spacing_zyx
    mx, my = protocol.margin_mm / sx, protocol.margin_mm / sy
    jx, jy = protocol.jitter_mm / sx, protocol.jitter_mm / sy
    area = fg.sum(axis=(1, 2))
    gt_slices = np.flatnonzero(area)
    k0, k1 = int(gt_slices[0]), int(gt_slices[-1])
    box3d = _bbox2d(fg.any(axis=0))

    if protocol.slices == "key":
        slices = [int(np.argmax(area))]
    elif protocol.slices == "gt":
        slices = [int(k) for k in gt_slices]
    else:
        slices = list(range(k0, k1 + 1))

    boxes: list[Box2D] = []
    for k in slices:
        if protocol.slices == "box3d" or not fg[k].any():
            raw = [box3d]
        else:
            raw = _slice_boxes(fg[k], protocol)
        for x0, y0, x1, y1 in raw:
            b = np.array([x0 - mx, y0 - my, x1 + mx, y1 + my], dtype=float)
            if protocol.jitter_mm > 0:
                b += rng.uniform(-1, 1, 4) * np.array([jx, jy, jx, jy])
            b = np.round(b, 3)
            bx0, by0, bx1, by1 = (float(v) for v in b)
            bx0, bx1 = min(bx0, bx1), max(bx0, bx1)
            by0, by1 = min(by0, by1), max(by0, by1)
            boxes.append(clip_box(Box2D(k, bx0, by0, bx1, by1, label=out_label, name=name), fg.shape))

    record = {"source": "reference_mask", **asdict(protocol), "spacing_zyx_mm": list(spacing_zyx),
              "n_boxes": len(boxes), "n_slices": len(slices),
              "n_slices_without_reference": int(sum(1 for k in slices if not fg[k].any()))}
    return PromptSet(boxes=boxes, protocol=record, image_shape=tuple(fg.shape))
