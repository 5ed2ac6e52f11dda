"""ErrorDistributionLib on slicer-core: signed-distance surface of a shifted sphere, colour table and legend,
histogram, exports, and the bad inputs (empty segment, wrong suffix)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import synthetic

from organsegbench.errors import EmptyMaskError, OrganSegBenchError
from organsegbench.io import Segmentation, SegmentInfo

SHAPE = (40, 40, 40)


def _pair(mrml_scene, pred_radius_mm: float, pred_mask=None):
    from OrganSegBenchLib import nodes, segments

    vol = synthetic.image(np.zeros(SHAPE, np.int16))
    volume_node = nodes.volume_node_from_image(vol, "ct")
    ref = synthetic.sphere(SHAPE, (20, 20, 20), 10).astype(np.uint8)
    pred = synthetic.sphere(SHAPE, (20, 20, 20), pred_radius_mm).astype(np.uint8) if pred_mask is None else pred_mask
    ref_node = segments.add_segmentation(Segmentation(vol.with_array(ref), {1: SegmentInfo(1, "liver")}), "ref",
                                         reference_volume_node=volume_node)
    pred_node = segments.add_segmentation(Segmentation(vol.with_array(pred), {1: SegmentInfo(1, "liver")}), "pred",
                                          reference_volume_node=volume_node)
    first = ref_node.GetSegmentation().GetNthSegmentID(0)
    return volume_node, ref_node, first, pred_node, pred_node.GetSegmentation().GetNthSegmentID(0)


def test_over_segmentation_gives_positive_distances_of_the_radius_gap(mrml_scene) -> None:
    from ErrorDistributionLib.errormap import SCALAR_NAME, compute_error_map

    volume_node, ref, ref_id, pred, pred_id = _pair(mrml_scene, pred_radius_mm=13)
    em = compute_error_map(ref, ref_id, pred, pred_id, volume_node, tolerance_mm=1.0)
    from vtkmodules.util.numpy_support import vtk_to_numpy

    d = vtk_to_numpy(em.model_node.GetPolyData().GetPointData().GetArray(SCALAR_NAME))
    assert d.size == em.stats["vertices"] > 100
    assert np.median(d) == pytest.approx(3.0, abs=0.75)  # 13 mm vs 10 mm spheres, voxel surfaces
    assert (d > 0).mean() > 0.99 and em.stats["within_tolerance"] < 0.05
    display = em.model_node.GetDisplayNode()
    assert display.GetActiveScalarName() == SCALAR_NAME and display.GetScalarVisibility()
    assert display.GetColorNodeID() == em.color_node.GetID()
    lo, hi = display.GetScalarRange()
    assert lo == pytest.approx(-hi) and hi == pytest.approx(em.stats["max_abs_mm"])
    counts = [em.histogram_node.GetTable().GetValueByName(r, "count").ToDouble()
              for r in range(em.histogram_node.GetNumberOfRows())]
    assert sum(counts) == d.size
    assert em.chart_node.GetNumberOfPlotSeriesNodes() == 1


def test_under_segmentation_is_negative(mrml_scene) -> None:
    from ErrorDistributionLib.errormap import compute_error_map

    volume_node, ref, ref_id, pred, pred_id = _pair(mrml_scene, pred_radius_mm=7)
    em = compute_error_map(ref, ref_id, pred, pred_id, volume_node)
    assert em.stats["mean_mm"] == pytest.approx(-3.0, abs=0.75)


def test_exports_mesh_and_tables(mrml_scene, tmp_path) -> None:
    from ErrorDistributionLib.errormap import compute_error_map, export_mesh, export_tables

    volume_node, ref, ref_id, pred, pred_id = _pair(mrml_scene, pred_radius_mm=12)
    em = compute_error_map(ref, ref_id, pred, pred_id, volume_node)
    mesh = export_mesh(em.model_node, tmp_path / "err.vtk")
    import vtk

    reader = vtk.vtkPolyDataReader()
    reader.SetFileName(str(mesh))
    reader.ReadAllScalarsOn()
    reader.Update()
    assert reader.GetOutput().GetNumberOfPoints() == em.stats["vertices"]
    hist, vertices = export_tables(em, tmp_path, "liver")
    rows = list(csv.DictReader(vertices.open()))
    assert len(rows) == em.stats["vertices"] and "signed_distance_mm" in rows[0]
    assert len(list(csv.DictReader(hist.open()))) == 40
    with pytest.raises(OrganSegBenchError, match="cannot export a mesh"):
        export_mesh(em.model_node, tmp_path / "err.docx")


def test_empty_prediction_segment_is_a_clear_error(mrml_scene) -> None:
    from ErrorDistributionLib.errormap import compute_error_map

    empty = np.zeros(SHAPE, np.uint8)
    empty[0, 0, 0] = 1  # one voxel far away so that the segment exists, then clear it in the segmentation
    volume_node, ref, ref_id, pred, pred_id = _pair(mrml_scene, 10, pred_mask=empty)
    import slicer

    arr = slicer.util.arrayFromSegmentBinaryLabelmap(pred, pred_id, volume_node)
    arr[:] = 0
    slicer.util.updateSegmentBinaryLabelmapFromArray(arr, pred, pred_id, volume_node)
    with pytest.raises(EmptyMaskError):
        compute_error_map(ref, ref_id, pred, pred_id, volume_node)
