"""Synthetic scene content for the modules' self-tests (Slicer's Reload & Test) and scripted checks: a volume
node with a known IJK-to-RAS matrix and segmentations made from label arrays on its grid."""

from __future__ import annotations

import numpy as np
import slicer

from OrganSegBenchLib.nodes import image_from_volume_node
from OrganSegBenchLib.segments import add_segmentation


def synthetic_volume(shape_zyx: tuple[int, int, int] = (20, 30, 30), spacing_mm: tuple[float, float, float] = (1, 1, 2),
                     name: str = "synthetic"):
    """A zero-filled scalar volume with LPS-aligned axes (RAS x = -i, y = -j, z = k), spacing (x, y, z) in mm."""
    ijk_to_ras = np.diag([-spacing_mm[0], -spacing_mm[1], spacing_mm[2], 1.0])
    return slicer.util.addVolumeFromArray(np.zeros(shape_zyx, np.int16), ijkToRAS=ijk_to_ras, name=name)


def segmentation_from_array(volume_node, labels: np.ndarray, names: dict[int, str], name: str):
    """A segmentation node with one segment per label value of ``labels`` (array on the volume's grid)."""
    from organsegbench.io import Segmentation, SegmentInfo

    grid = image_from_volume_node(volume_node)
    seg = Segmentation(grid.with_array(np.asarray(labels, np.uint8)),
                       {v: SegmentInfo(v, n) for v, n in names.items()})
    return add_segmentation(seg, name, reference_volume_node=volume_node)
