"""Slicer interoperability of ``.seg.nrrd``: Slicer's own storage node (slicer-core) reads ours, we read Slicer's.

Skipped when slicer-core is not importable; the engine itself never imports slicer.
"""

from __future__ import annotations

import numpy as np
import pytest

from organsegbench.io import Image, Segmentation, SegmentInfo, read_segmentation, write_segmentation

LIVER = {"value": "10200004", "scheme": "SCT", "meaning": "Liver"}
ANATOMY = {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"}


@pytest.fixture
def slicer_io():
    try:
        import slicer
        import vtk
        from vtk.util.numpy_support import vtk_to_numpy
    except Exception as exc:  # ImportError or a broken binary
        pytest.skip(f"slicer-core not importable: {exc}")
    return slicer, vtk, vtk_to_numpy


def _segmentation() -> Segmentation:
    arr = np.zeros((4, 10, 12), dtype=np.uint8)
    arr[1:3, 2:5, 3:7] = 3
    arr[3, 8, 10] = 7
    segs = {3: SegmentInfo(3, "liver", category=ANATOMY, type=LIVER, color=(200, 10, 20)),
            7: SegmentInfo(7, "speck", color=(0, 0, 255))}
    return Segmentation(Image(arr, spacing=(0.5, 0.6, 2.0), origin=(1.0, 2.0, 3.0)), segs)


def test_slicer_reads_ours_and_we_read_slicers(tmp_path, slicer_io):
    slicer, vtk, vtk_to_numpy = slicer_io
    ours = _segmentation()
    write_segmentation(ours, tmp_path / "ours.seg.nrrd")
    scene = slicer.vtkMRMLScene()
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "ours.seg.nrrd"))
    assert storage.ReadData(node) == 1
    segmentation = node.GetSegmentation()
    ids = vtk.vtkStringArray()
    segmentation.GetSegmentIDs(ids)
    seen = {}
    for i in range(ids.GetNumberOfValues()):
        segment = segmentation.GetSegment(ids.GetValue(i))
        rep = segmentation.GetSegmentRepresentation(ids.GetValue(i), "Binary labelmap")
        voxels = int((vtk_to_numpy(rep.GetPointData().GetScalars()) == segment.GetLabelValue()).sum())
        seen[segment.GetName()] = (segment.GetLabelValue(), tuple(round(c * 255) for c in segment.GetColor()), voxels)
    counts = ours.voxel_counts()
    assert seen == {"liver": (3, (200, 10, 20), counts[3]), "speck": (7, (0, 0, 255), counts[7])}

    storage.SetFileName(str(tmp_path / "slicer.seg.nrrd"))
    assert storage.WriteData(node) == 1
    back = read_segmentation(tmp_path / "slicer.seg.nrrd")  # Slicer crops to the segments' extent
    assert {v: (s.name, s.color) for v, s in back.segments.items()} == {3: ("liver", (200, 10, 20)),
                                                                         7: ("speck", (0, 0, 255))}
    assert back.segments[3].type == LIVER and back.segments[3].category == ANATOMY  # from SegmentN_Tags
    np.testing.assert_array_equal(back.on_grid(ours.labelmap).labelmap.array, ours.labelmap.array)


def test_slicer_reads_our_layered_overlapping_file(tmp_path, slicer_io):
    slicer, vtk, vtk_to_numpy = slicer_io
    shape = (3, 6, 7)
    a = np.zeros(shape, dtype=bool)
    a[0:2, 1:4, 1:4] = True
    b = np.zeros(shape, dtype=bool)
    b[1:3, 2:6, 2:7] = True
    ours = Segmentation.from_masks(Image(np.zeros(shape, dtype=np.uint8)), {1: a, 2: b},
                                   {1: SegmentInfo(1, "first"), 2: SegmentInfo(2, "second")})
    write_segmentation(ours, tmp_path / "layers.seg.nrrd")
    scene = slicer.vtkMRMLScene()
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "layers.seg.nrrd"))
    assert storage.ReadData(node) == 1
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfLayers() == 2
    ids = vtk.vtkStringArray()
    segmentation.GetSegmentIDs(ids)
    counts = {}
    for i in range(ids.GetNumberOfValues()):
        segment = segmentation.GetSegment(ids.GetValue(i))
        rep = segmentation.GetSegmentRepresentation(ids.GetValue(i), "Binary labelmap")
        counts[segment.GetName()] = int((vtk_to_numpy(rep.GetPointData().GetScalars()) == segment.GetLabelValue()).sum())
    assert counts == {"first": int(a.sum()), "second": int(b.sum())}
