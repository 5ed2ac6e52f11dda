"""SegmentationReviewLib on slicer-core: layout XML and per-row display, structure matching across
vocabularies, navigation centring the views, verdicts saved and resumed, parameter node mirror, agreement."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import synthetic

from organsegbench.errors import OrganSegBenchError
from organsegbench.io import Segmentation, SegmentInfo

SHAPE = (24, 32, 32)


def _case(mrml_scene, tmp_path):
    """Volume + three models: A (liver, spleen), B (v1-style names: liver, spleen shifted), C (kidney only)."""
    from OrganSegBenchLib import nodes, segments

    from organsegbench.io import write_segmentation

    vol = synthetic.image(np.zeros(SHAPE, np.int16), spacing_xyz=(1.0, 1.0, 2.0))
    volume_node = nodes.volume_node_from_image(vol, "ct")
    liver = synthetic.sphere(SHAPE, (24, 12, 12), 6, vol.spacing_zyx)
    spleen = synthetic.box(SHAPE, (14, 18, 20), (20, 26, 28))
    a = np.zeros(SHAPE, np.uint8)
    a[liver], a[spleen] = 1, 2
    b = np.zeros(SHAPE, np.uint8)
    b[np.roll(liver, 1, axis=2)], b[spleen] = 5, 7
    seg_a = segments.add_segmentation(
        Segmentation(vol.with_array(a), {1: SegmentInfo(1, "liver"), 2: SegmentInfo(2, "spleen")}), "A",
        reference_volume_node=volume_node)
    path_b = tmp_path / "model_b.nii.gz"
    write_segmentation(Segmentation(vol.with_array(b), {5: SegmentInfo(5, "Liver"), 7: SegmentInfo(7, "Spleen")}),
                       path_b)
    c = synthetic.box(SHAPE, (2, 2, 2), (6, 6, 6)).astype(np.uint8)
    seg_c = segments.add_segmentation(Segmentation(vol.with_array(c), {1: SegmentInfo(1, "kidney_left")}), "C",
                                      reference_volume_node=volume_node)
    return volume_node, seg_a, path_b, seg_c


def test_layout_xml_has_one_row_per_model_and_parses() -> None:
    pytest.importorskip("slicer")
    from SegmentationReviewLib.layout import review_layout_xml, view_tag

    xml = review_layout_xml(["A", "B & co"], with_3d=True)
    root = ET.fromstring(xml)
    rows = root.findall("./item/layout")
    assert len(rows) == 2 and all(len(r.findall("./item/view")) == 4 for r in rows)
    tags = [v.get("singletontag") for v in root.iter("view")]
    assert view_tag(1, "Coronal") in tags and len(set(tags)) == 8
    with pytest.raises(OrganSegBenchError, match="no segmentations"):
        review_layout_xml([])


def test_each_segmentation_is_shown_only_in_its_row(mrml_scene, tmp_path) -> None:
    from SegmentationReviewLib.review import ReviewLogic

    volume_node, seg_a, path_b, seg_c = _case(mrml_scene, tmp_path)
    logic = ReviewLogic(volume_node)
    logic.add_segmentation_node(seg_a, "A")
    logic.add_segmentation_file(path_b, "B")
    views = logic.show()
    layout_node = mrml_scene.GetSingletonNode("vtkMRMLLayoutNode", "vtkMRMLLayoutNode")
    assert layout_node.GetViewArrangement() == 5610 and layout_node.IsLayoutDescription(5610)
    for model, node in logic.segmentations.items():
        d = node.GetDisplayNode()
        own = {v.GetID() for v in views[model]}
        other = {v.GetID() for m, vs in views.items() if m != model for v in vs}
        assert all(d.IsDisplayableInView(i) for i in own)
        assert not any(d.IsDisplayableInView(i) for i in other)


def test_structures_matched_across_names_and_counted(mrml_scene, tmp_path) -> None:
    from SegmentationReviewLib.review import ReviewLogic

    volume_node, seg_a, path_b, seg_c = _case(mrml_scene, tmp_path)
    logic = ReviewLogic(volume_node)
    for name, node in (("A", seg_a), ("C", seg_c)):
        logic.add_segmentation_node(node, name)
    logic.add_segmentation_file(path_b, "B")
    rows = {r["structure"]: r for r in logic.structure_rows()}
    assert rows["liver"]["models"] == 2 and rows["liver"]["A"] == "yes" and rows["liver"]["B"] == "yes"
    assert rows["kidney_left"]["models"] == 1 and rows["kidney_left"]["C"] == "yes"
    table = logic.structure_table()
    assert table.GetNumberOfRows() == 3


def test_navigation_centres_every_view_and_verdicts_resume(mrml_scene, tmp_path) -> None:
    from SegmentationReviewLib.review import ReviewLogic

    volume_node, seg_a, path_b, _ = _case(mrml_scene, tmp_path)
    logic = ReviewLogic(volume_node)
    logic.add_segmentation_node(seg_a, "A")
    logic.add_segmentation_file(path_b, "B")
    logic.show()
    review_file = tmp_path / "review.json"
    session = logic.open_session(review_file, reviewer="dr_b")
    assert session.structures == ["liver", "spleen"]
    assert logic.go(1) == "spleen"
    centre = logic.structure_centre("spleen")
    for views in logic.views.values():
        for v in views:
            assert np.allclose(np.array(v.GetSliceToRAS().MultiplyPoint((0, 0, 0, 1)))[:3], centre, atol=1e-6)
    logic.set_verdict("spleen", "B", "needs edit", "upper pole leaks")
    # reopen in a fresh logic (as after restarting Slicer): same structure, same verdict
    logic2 = ReviewLogic(volume_node)
    logic2.add_segmentation_node(seg_a, "A")
    logic2.add_segmentation_node(logic.segmentations["B"], "B")
    resumed = logic2.open_session(review_file)
    assert resumed.current_structure == "spleen" and resumed.entry("spleen", "B").note == "upper pole leaks"
    assert json.loads(review_file.read_text())["reviewer"] == "dr_b"
    assert (tmp_path / "review.csv").read_text().count("needs_edit") == 1


def test_parameter_node_mirror_round_trip(mrml_scene, tmp_path) -> None:
    from SegmentationReviewLib.review import ReviewLogic

    volume_node, seg_a, _, seg_c = _case(mrml_scene, tmp_path)
    logic = ReviewLogic(volume_node)
    logic.add_segmentation_node(seg_a, "A")
    logic.open_session(tmp_path / "r.json")
    logic.set_verdict("liver", "A", "accept")
    param = mrml_scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "SegmentationReview")
    logic.store(param)
    other = ReviewLogic(volume_node)
    restored = other.restore(param)
    assert restored.entry("liver", "A").verdict.value == "accept" and restored.path == tmp_path / "r.json"


def test_pairwise_agreement_and_no_common_structure_message(mrml_scene, tmp_path) -> None:
    from SegmentationReviewLib.review import ReviewLogic

    from organsegbench.metrics import dice

    volume_node, seg_a, path_b, seg_c = _case(mrml_scene, tmp_path)
    log: list[str] = []
    logic = ReviewLogic(volume_node, log=log.append)
    logic.add_segmentation_node(seg_a, "A")
    logic.add_segmentation_file(path_b, "B")
    logic.add_segmentation_node(seg_c, "C")
    rows = logic.agreement_rows()
    assert {(r["model_a"], r["model_b"], r["structure"]) for r in rows} == {("A", "B", "liver"), ("A", "B", "spleen")}
    liver = next(r for r in rows if r["structure"] == "liver")
    vol = synthetic.image(np.zeros(SHAPE, np.int16), spacing_xyz=(1.0, 1.0, 2.0))
    sph = synthetic.sphere(SHAPE, (24, 12, 12), 6, vol.spacing_zyx)
    assert liver["dsc"] == pytest.approx(dice(sph, np.roll(sph, 1, axis=2)))
    assert any("A vs C" in m and "no structure in common" in m for m in log)
    assert logic.agreement_table().GetNumberOfRows() == 2


def test_verdict_without_review_file_is_a_clear_error(mrml_scene, tmp_path) -> None:
    from SegmentationReviewLib.review import ReviewLogic

    volume_node, seg_a, _, _ = _case(mrml_scene, tmp_path)
    logic = ReviewLogic(volume_node)
    logic.add_segmentation_node(seg_a, "A")
    with pytest.raises(OrganSegBenchError, match="no review file is open"):
        logic.set_verdict("liver", "A", "accept")
    with pytest.raises(OrganSegBenchError, match="no volume"):
        ReviewLogic(None)


def test_dicom_segs_of_the_ct_series_are_found_and_loaded(mrml_scene, dcmqi_data) -> None:
    from OrganSegBenchLib import nodes
    from SegmentationReviewLib.review import ReviewLogic

    from organsegbench.io import read_image
    from organsegbench.review import series_uid_of

    ct = nodes.volume_node_from_image(read_image(dcmqi_data / "ct-3slice"), "ct")
    log: list[str] = []
    logic = ReviewLogic(ct, log=log.append)
    names = logic.add_segmentations_for_series(series_uid_of(dcmqi_data / "ct-3slice"), dcmqi_data)
    assert "liver" in names
    rows = {r["structure"]: r for r in logic.structure_rows()}
    assert "liver" in rows
    assert logic.add_segmentations_for_series("1.2.3", dcmqi_data) == [] and "references series 1.2.3" in log[-1]
