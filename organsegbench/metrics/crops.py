"""Split a mask's bounding-box crop into disjoint boxes around groups of foreground that lie far apart.

A false-positive island far from the organ stretches the bounding box over empty space; every dense step
(erosion, surfel encoding, the offset probe) would then touch that space. :func:`split_crop` finds the groups from
a coarse block occupancy grid (blocks of :data:`BLOCK` voxels, 26-connected), merges groups whose boxes overlap,
and returns one tight crop per remaining box. Voxels of different pieces are more than one voxel apart, so the
6-neighbour erosion and the 2×2×2 surfel codes computed per piece equal those of the whole mask.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: block edge (voxels) of the occupancy grid
BLOCK = 16
#: crops with fewer voxels are never split (the occupancy pass would cost more than it saves)
SPLIT_MIN_VOXELS = 2_000_000
#: splitting is kept only when the pieces' boxes hold at most this fraction of the crop's voxels
SPLIT_MAX_FRACTION = 0.7

Piece = tuple[np.ndarray, tuple[int, ...]]


def _occupancy(crop: np.ndarray) -> np.ndarray:
    """Boolean grid: does block ``(i, j, k)`` of :data:`BLOCK`³ voxels hold foreground?"""
    occ = crop
    for ax in range(crop.ndim):  # outer axis first: its reduction is a cheap row-wise OR
        occ = np.logical_or.reduceat(occ, np.arange(0, crop.shape[ax], BLOCK), axis=ax)
    return occ


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    return all(lo1 < hi2 and lo2 < hi1 for (lo1, hi1), (lo2, hi2) in zip(a, b, strict=True))


def _merge_overlapping(boxes: list[list[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
    merged = True
    while merged and len(boxes) > 1:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if _overlap(boxes[i], boxes[j]):
                    boxes[i] = [(min(a[0], b[0]), max(a[1], b[1])) for a, b in zip(boxes[i], boxes[j], strict=True)]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def split_crop(crop: np.ndarray, offset: tuple[int, ...]) -> list[Piece]:
    """Pieces ``(crop_view, offset)`` covering every foreground voxel of ``crop`` exactly once.

    Returns ``[(crop, offset)]`` unchanged when the crop is small, dense, or holds one group.
    """
    if crop.size < SPLIT_MIN_VOXELS:
        return [(crop, offset)]
    labels, n = ndi.label(_occupancy(crop), structure=np.ones((3,) * crop.ndim))
    if n <= 1:
        return [(crop, offset)]
    boxes = [[(s.start * BLOCK, min(s.stop * BLOCK, size)) for s, size in zip(sl, crop.shape, strict=True)]
             for sl in ndi.find_objects(labels)]
    boxes = _merge_overlapping(boxes)
    if len(boxes) == 1 or sum(np.prod([hi - lo for lo, hi in b]) for b in boxes) > SPLIT_MAX_FRACTION * crop.size:
        return [(crop, offset)]
    from organsegbench.metrics.surface import bounding_box

    pieces = []
    for b in boxes:
        sub = crop[tuple(slice(lo, hi) for lo, hi in b)]
        tight = bounding_box(sub)  # boxes are disjoint, so sub holds only this group's voxels
        if tight is None:  # pragma: no cover - every block group holds foreground
            continue
        pieces.append((sub[tight], tuple(o + lo + t.start for o, (lo, _), t in zip(offset, b, tight, strict=True))))
    return pieces
