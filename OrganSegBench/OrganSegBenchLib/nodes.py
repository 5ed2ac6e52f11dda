"""MRML volume and segmentation nodes <-> engine arrays with full geometry.

Slicer stores a volume's geometry as an IJK-to-RAS matrix; the engine's :class:`organsegbench.io.Image` stores
spacing/origin/direction in ITK's LPS convention with the array in ``(k, j, i)`` order. The conversion is exact:
``IJKToRAS = diag(-1, -1, 1, 1) @ IJKToLPS`` (see ``Image.ijk_to_ras_matrix``).

Imports slicer (MRML) but never qt/ctk, so it runs in the Slicer app and headless on slicer-core.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import slicer
import vtk

logger = logging.getLogger(__name__)

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: a function that receives user-facing log messages (the module's log box; ``logger.info`` by default)
LogFn = Callable[[str], None]


def _scene(scene=None):
    scene = scene or slicer.mrmlScene
    if scene is None:
        raise RuntimeError("no MRML scene: set slicer.mrmlScene or pass scene=")
    return scene


def ijk_to_ras(node) -> np.ndarray:
    """The node's 4x4 IJK-to-RAS matrix (mm)."""
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def _vtk_matrix(a: np.ndarray) -> vtk.vtkMatrix4x4:
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(a[r, c]))
    return m


def geometry_from_ijk_to_ras(matrix: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
    """Split an IJK-to-RAS matrix into ITK ``(spacing, origin, direction)`` in LPS (mm)."""
    lps = RAS_TO_LPS @ np.asarray(matrix, dtype=float)
    cols = lps[:3, :3]
    spacing = np.linalg.norm(cols, axis=0)
    if np.any(spacing <= 0):
        raise ValueError(f"degenerate IJK-to-RAS matrix (zero spacing): {matrix.tolist()}")
    return tuple(spacing.tolist()), tuple(lps[:3, 3].tolist()), cols / spacing


def image_from_volume_node(node, name: str | None = None):
    """An engine ``Image`` (array copy, geometry in LPS) from a scalar or label map volume node.

    A parent transform is refused rather than silently ignored (harden it first).
    """
    from organsegbench.io.image import Image

    if node is None or node.GetImageData() is None:
        raise ValueError(f"volume {node.GetName() if node else None!r} has no image data")
    if node.GetParentTransformNode() is not None:
        from organsegbench.errors import GeometryMismatchError

        raise GeometryMismatchError(
            f"volume {node.GetName()!r} is under transform {node.GetParentTransformNode().GetName()!r}",
            "harden the transform (Data module: right-click > Harden transform) before running",
        )
    spacing, origin, direction = geometry_from_ijk_to_ras(ijk_to_ras(node))
    array = slicer.util.arrayFromVolume(node).copy()
    return Image(array=array, spacing=spacing, origin=origin, direction=direction,
                 metadata={"source": name or node.GetName(), "node_id": node.GetID()})


def set_node_geometry(node, image) -> None:
    """Set a volume node's IJK-to-RAS matrix from an engine ``Image``."""
    node.SetIJKToRASMatrix(_vtk_matrix(image.ijk_to_ras_matrix()))


def volume_node_from_image(image, name: str, labelmap: bool = False, scene=None, node=None):
    """Create (or update ``node``) a scalar/label map volume node holding ``image`` with its geometry."""
    scene = _scene(scene)
    cls = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    if node is None:
        node = scene.AddNewNodeByClass(cls, name)
    arr = np.ascontiguousarray(image.array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    slicer.util.updateVolumeFromArray(node, arr)
    set_node_geometry(node, image)
    node.CreateDefaultDisplayNodes()
    return node


def segmentation_geometry_matches(segmentation_node, volume_node) -> bool:
    """True when the segmentation's labelmap geometry equals the volume's grid (no resampling needed)."""
    from organsegbench.io.geometry import same_grid

    lm = labelmap_image_from_segmentation(segmentation_node, None)[0]
    return same_grid(lm, image_from_volume_node(volume_node))


def labelmap_image_from_segmentation(segmentation_node, reference_volume_node=None,
                                     segment_ids: list[str] | None = None, log: LogFn | None = None):
    """Export segments to an engine label map ``Image`` plus ``{label: segment name}``.

    With ``reference_volume_node`` the label map is on the volume's grid; when the segmentation was on another
    grid it is resampled (nearest neighbour, by Slicer) and ``log`` says so. Labels follow ``segment_ids`` order
    (default: segmentation order), 1-based. Overlapping segments: later ones win in shared voxels.
    """
    log = log or logger.info
    seg = segmentation_node.GetSegmentation()
    ids = list(segment_ids) if segment_ids is not None else [seg.GetNthSegmentID(i)
                                                             for i in range(seg.GetNumberOfSegments())]
    for sid in ids:
        if seg.GetSegment(sid) is None:
            raise KeyError(f"segment {sid!r} not in {segmentation_node.GetName()!r}")
    scene = segmentation_node.GetScene() or _scene()
    lm_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__organsegbench_export")
    try:
        id_array = vtk.vtkStringArray()
        for sid in ids:
            id_array.InsertNextValue(sid)
        logic = slicer.vtkSlicerSegmentationsModuleLogic
        if reference_volume_node is not None:
            if not _same_geometry_as_reference(segmentation_node, reference_volume_node):
                log(f"segmentation {segmentation_node.GetName()!r} is on a different grid than volume "
                    f"{reference_volume_node.GetName()!r}; resampled to the volume grid (nearest neighbour)")
            ok = logic.ExportSegmentsToLabelmapNode(segmentation_node, id_array, lm_node, reference_volume_node)
        else:
            ok = logic.ExportSegmentsToLabelmapNode(segmentation_node, id_array, lm_node)
        if not ok:
            raise RuntimeError(f"could not export segments of {segmentation_node.GetName()!r} to a label map")
        image = image_from_volume_node(lm_node, name=segmentation_node.GetName())
    finally:
        scene.RemoveNode(lm_node)
    labels = {i + 1: seg.GetSegment(sid).GetName() for i, sid in enumerate(ids)}
    return image, labels


def _segmentation_lattice(segmentation_node) -> np.ndarray | None:
    """Image-to-RAS matrix of the first segment's binary labelmap (``None`` when no segment has one)."""
    seg = segmentation_node.GetSegmentation()
    for i in range(seg.GetNumberOfSegments()):
        rep = seg.GetNthSegment(i).GetRepresentation("Binary labelmap")
        if rep is not None:
            m = vtk.vtkMatrix4x4()
            rep.GetImageToWorldMatrix(m)
            return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
    return None


def _same_geometry_as_reference(segmentation_node, volume_node) -> bool:
    """True when the segmentation's labelmap lattice is the volume's (same axes and spacing, origin offset by a
    whole number of voxels), i.e. exporting to the volume grid only crops/pads and never interpolates."""
    seg_matrix = _segmentation_lattice(segmentation_node)
    if seg_matrix is None:
        return True  # closed-surface-only segmentation: rasterised on the reference grid, nothing to resample
    t = np.linalg.inv(ijk_to_ras(volume_node)) @ seg_matrix  # segmentation IJK -> volume IJK
    return bool(np.allclose(t[:3, :3], np.eye(3), atol=1e-4) and np.allclose(t[:3, 3], np.round(t[:3, 3]), atol=1e-3))
