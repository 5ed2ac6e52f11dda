"""OrganSegBenchLib on headless slicer-core: geometry round trips, segments with terminology, ROI -> box prompt,
metric tables with CSV export, evaluation of two segmentation nodes (and the bad inputs)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import synthetic

from organsegbench.errors import GeometryMismatchError, OrganSegBenchError
from organsegbench.io import Image, Segmentation, SegmentInfo

LIVER = SegmentInfo(1, "liver", category={"scheme": "SCT", "value": "123037004", "meaning": "Anatomical Structure"},
                    type={"scheme": "SCT", "value": "10200004", "meaning": "Liver"}, color=(221, 130, 101))


def _oblique_image(rng) -> Image:
    """An anisotropic, rotated, offset grid (the geometry must survive exactly)."""
    a = np.deg2rad(20)
    direction = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return Image(array=rng.integers(-1000, 1000, (7, 9, 11)).astype(np.int16), spacing=(0.8, 0.9, 2.5),
                 origin=(-120.0, 35.5, 400.0), direction=direction)


def test_volume_node_round_trip_keeps_geometry_and_lps_ras(mrml_scene, rng) -> None:
    from OrganSegBenchLib import nodes

    img = _oblique_image(rng)
    node = nodes.volume_node_from_image(img, "ct")
    # Slicer stores RAS: the LPS origin (-120, 35.5, 400) is RAS (120, -35.5, 400)
    assert node.GetOrigin() == pytest.approx((120.0, -35.5, 400.0))
    assert node.GetSpacing() == pytest.approx((0.8, 0.9, 2.5))
    back = nodes.image_from_volume_node(node)
    np.testing.assert_array_equal(back.array, img.array)
    assert back.spacing == pytest.approx(img.spacing) and back.origin == pytest.approx(img.origin)
    np.testing.assert_allclose(back.direction, img.direction, atol=1e-12)
    np.testing.assert_allclose(nodes.ijk_to_ras(node), img.ijk_to_ras_matrix(), atol=1e-12)


def test_volume_under_transform_is_refused(mrml_scene, rng) -> None:
    from OrganSegBenchLib import nodes

    node = nodes.volume_node_from_image(_oblique_image(rng), "ct")
    t = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    node.SetAndObserveTransformNodeID(t.GetID())
    with pytest.raises(GeometryMismatchError, match="harden"):
        nodes.image_from_volume_node(node)


def _volume_and_seg(mrml_scene, shape=(20, 24, 28), spacing=(1.5, 1.0, 2.0)):
    from OrganSegBenchLib import nodes, segments

    vol = synthetic.image(np.zeros(shape, np.int16), spacing_xyz=spacing, origin=(5.0, -3.0, 12.0))
    volume_node = nodes.volume_node_from_image(vol, "ct")
    lm = np.zeros(shape, np.uint8)
    lm[synthetic.sphere(shape, (20, 12, 28), 7, vol.spacing_zyx)] = 1
    lm[synthetic.box(shape, (2, 2, 2), (6, 8, 9))] = 2
    seg = Segmentation(vol.with_array(lm), {1: LIVER, 2: SegmentInfo(2, "spleen", color=(157, 108, 162))})
    seg_node = segments.add_segmentation(seg, "model_a", reference_volume_node=volume_node)
    return vol, volume_node, seg, seg_node


def test_segments_get_names_colours_terminology_and_exact_masks(mrml_scene) -> None:
    from OrganSegBenchLib import nodes, segments

    vol, volume_node, seg, seg_node = _volume_and_seg(mrml_scene)
    infos = {i["name"]: i for i in segments.segment_infos(seg_node)}
    assert set(infos) == {"liver", "spleen"}
    assert infos["liver"]["color"] == pytest.approx((221 / 255, 130 / 255, 101 / 255), abs=1e-3)
    assert infos["liver"]["codes"]["type"]["value"] == "10200004" and infos["liver"]["label"] == 1
    assert infos["spleen"]["codes"]["type"] is None  # no codes given -> no terminology invented
    back, labels = nodes.labelmap_image_from_segmentation(seg_node, volume_node)
    inv = {v: k for k, v in labels.items()}
    np.testing.assert_array_equal(back.array == inv["liver"], seg.labelmap.array == 1)
    np.testing.assert_array_equal(back.array == inv["spleen"], seg.labelmap.array == 2)


def test_terminology_string_round_trip() -> None:
    pytest.importorskip("slicer")
    from OrganSegBenchLib.segments import codes_from_terminology, terminology_entry

    entry = terminology_entry(LIVER)
    assert entry.split("~")[2] == "SCT^10200004^Liver"
    assert codes_from_terminology(entry)["type"] == LIVER.type
    assert terminology_entry(SegmentInfo(3, "thing")) is None


def test_segmentation_on_other_grid_is_resampled_and_logged(mrml_scene) -> None:
    from OrganSegBenchLib import nodes, segments

    vol = synthetic.image(np.zeros((20, 24, 28), np.int16), spacing_xyz=(1.0, 1.0, 1.0))
    volume_node = nodes.volume_node_from_image(vol, "ct")
    coarse = synthetic.image(np.zeros((10, 12, 14), np.uint8), spacing_xyz=(2.0, 2.0, 2.0), origin=(0.5, 0.5, 0.5))
    arr = np.zeros(coarse.shape, np.uint8)
    arr[3:7, 4:8, 5:9] = 1
    messages: list[str] = []
    seg_node = segments.add_segmentation(Segmentation(coarse.with_array(arr), {1: LIVER}), "coarse",
                                         reference_volume_node=volume_node, log=messages.append)
    assert any("different grid" in m and "resampled to the volume grid" in m for m in messages)
    lm, _ = nodes.labelmap_image_from_segmentation(seg_node, volume_node)
    assert lm.shape == vol.shape
    assert int((lm.array > 0).sum()) == 4 * 4 * 4 * 8  # each 2 mm voxel becomes 8 voxels of 1 mm


def test_exporting_a_segmentation_made_on_another_grid_logs_resampling(mrml_scene) -> None:
    from OrganSegBenchLib import nodes, segments

    coarse = synthetic.image(np.zeros((10, 12, 14), np.uint8), spacing_xyz=(2.0, 2.0, 2.0))
    arr = np.zeros(coarse.shape, np.uint8)
    arr[3:7, 4:8, 5:9] = 1
    seg_node = segments.add_segmentation(Segmentation(coarse.with_array(arr), {1: LIVER}), "coarse")
    fine = nodes.volume_node_from_image(synthetic.image(np.zeros((20, 24, 28), np.int16)), "ct")
    messages: list[str] = []
    lm, _ = nodes.labelmap_image_from_segmentation(seg_node, fine, log=messages.append)
    assert lm.shape == (20, 24, 28) and any("resampled" in m for m in messages)
    messages.clear()
    same = nodes.volume_node_from_image(coarse, "coarse_grid")
    nodes.labelmap_image_from_segmentation(seg_node, same, log=messages.append)
    assert messages == []


def _roi(mrml_scene, center, size):
    roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    roi.SetCenter(*center)
    roi.SetSize(*size)
    return roi


def test_roi_to_voxel_box_per_slice_and_clipping(mrml_scene) -> None:
    from OrganSegBenchLib import nodes, prompts

    # identity direction, spacing (1, 1, 2) mm, origin LPS (0,0,0): RAS x = -i, RAS y = -j, z = 2k
    img = synthetic.image(np.zeros((10, 30, 40), np.int16), spacing_xyz=(1.0, 1.0, 2.0))
    vol = nodes.volume_node_from_image(img, "ct")
    roi = _roi(mrml_scene, center=(-20.0, -15.0, 9.0), size=(10.0, 6.0, 4.0))
    box = prompts.roi_to_voxel_box(roi, vol)
    assert box.i == (15, 25) and box.j == (12, 18) and box.k == (4, 5) and not box.clipped
    ps = prompts.roi_prompt_set(roi, vol, label=1, name="liver")
    assert [b.slice for b in ps.boxes] == [4, 5]
    assert ps.boxes[0].xyxy == (15.0, 12.0, 25.0, 18.0) and ps.image_shape == (10, 30, 40)
    partly = _roi(mrml_scene, center=(0.0, -15.0, 9.0), size=(10.0, 6.0, 4.0))  # extends past column 0
    b2 = prompts.roi_to_voxel_box(partly, vol)
    assert b2.clipped and b2.i == (0, 5)


def test_roi_outside_the_volume_is_a_clear_error(mrml_scene) -> None:
    from OrganSegBenchLib import nodes, prompts

    vol = nodes.volume_node_from_image(synthetic.image(np.zeros((10, 30, 40), np.int16)), "ct")
    roi = _roi(mrml_scene, center=(500.0, 500.0, 500.0), size=(10.0, 10.0, 10.0))
    with pytest.raises(OrganSegBenchError, match="lies outside volume 'ct'") as err:
        prompts.roi_to_voxel_box(roi, vol)
    assert "move the ROI" in str(err.value)
    with pytest.raises(OrganSegBenchError, match="no ROI"):
        prompts.roi_to_voxel_box(None, vol)


def test_metric_table_csv_export(mrml_scene, tmp_path) -> None:
    from OrganSegBenchLib import tables

    rows = [{"structure": "liver", "dsc": 0.97, "hd95": 2.5}, {"structure": "spleen", "dsc": float("nan"),
                                                                "hd95": None, "dsc_note": "prediction empty"}]
    node = tables.table_node_from_rows(rows, "metrics", units={"hd95": "mm"})
    assert node.GetNumberOfRows() == 2 and node.GetColumnUnitLabel("hd95") == "mm"
    back = tables.rows_from_table_node(node)
    assert back[0]["dsc"] == pytest.approx(0.97) and np.isnan(back[1]["hd95"])
    out = tables.export_table_csv(node, tmp_path / "m.csv")
    read = list(csv.DictReader(out.open()))
    assert read[0]["structure"] == "liver" and float(read[0]["hd95"]) == pytest.approx(2.5)
    assert read[1]["dsc_note"] == "prediction empty"
    chart = tables.bar_chart(node, "structure", "dsc", "DSC per structure")
    assert chart.GetNumberOfPlotSeriesNodes() == 1
    with pytest.raises(OrganSegBenchError, match="xlsx"):
        tables.export_table_csv(node, tmp_path / "m.xlsx")


def test_evaluate_two_segmentation_nodes_matches_by_name_and_code(mrml_scene) -> None:
    from OrganSegBenchLib import evaluate, segments

    from organsegbench.metrics import dice

    vol, volume_node, seg, ref_node = _volume_and_seg(mrml_scene)
    shifted = np.roll(seg.labelmap.array, 2, axis=2)
    # the prediction names the liver differently ("Liver", code only) and has an extra structure
    pred = Segmentation(vol.with_array(np.where(shifted == 2, 0, shifted)),
                        {1: SegmentInfo(1, "Liver", category=LIVER.category, type=LIVER.type)})
    pred.labelmap.array[0:2, 0:2, 0:2] = 3
    pred.segments[3] = SegmentInfo(3, "aorta")
    pred_node = segments.add_segmentation(pred, "model_b", reference_volume_node=volume_node)
    rows, units = evaluate.evaluate_segmentations(ref_node, pred_node, volume_node, metrics=["dsc", "hd95"])
    assert [r["structure"] for r in rows] == ["liver"]
    assert rows[0]["dsc"] == pytest.approx(dice(seg.labelmap.array == 1, shifted == 1))
    assert units == {"hd95": "mm"}


def test_no_structure_in_common_says_so(mrml_scene) -> None:
    from OrganSegBenchLib import evaluate, segments

    vol, volume_node, seg, ref_node = _volume_and_seg(mrml_scene)
    other = Segmentation(seg.labelmap.with_array((seg.labelmap.array > 0).astype(np.uint8)),
                         {1: SegmentInfo(1, "urinary_bladder")})
    other_node = segments.add_segmentation(other, "bladder_model", reference_volume_node=volume_node)
    with pytest.raises(OrganSegBenchError, match="have no structure in common") as err:
        evaluate.evaluate_segmentations(ref_node, other_node, volume_node)
    assert "liver" in str(err.value) and "urinary_bladder" in str(err.value)
