"""MRML logic on the real abdomen CT (TotalSegmentator sample data): geometry, import of the normal and
``--fast`` outputs with vocabulary names, evaluation against an independent numpy computation, review matching
and agreement, and the liver error map."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

pytestmark = pytest.mark.slow


@pytest.fixture
def ct_case(mrml_scene, sample_data):
    from OrganSegBenchLib import nodes, segments

    from organsegbench.io import read_image

    image = read_image(sample_data.path("abdomen_ct", "image"))
    volume = nodes.volume_node_from_image(image, "example_ct")
    normal = segments.load_segmentation_file(sample_data.path("abdomen_ct", "seg_normal"), volume, "normal",
                                             vocabulary="total")
    fast = segments.load_segmentation_file(sample_data.path("abdomen_ct", "seg_fast"), volume, "fast",
                                           vocabulary="total")
    return image, volume, normal, fast


def _liver_dice(sample_data) -> float:
    """Independent DSC of the liver (label 5 in TotalSegmentator 'total') straight from the files."""
    from organsegbench.labels import get_vocabulary

    liver = next(k for k, v in get_vocabulary("total").labels.items() if v == "liver")
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_data.path("abdomen_ct", "seg_normal")))) == liver
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_data.path("abdomen_ct", "seg_fast")))) == liver
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_ct_geometry_survives_the_node_round_trip(ct_case) -> None:
    from OrganSegBenchLib import nodes

    image, volume, _, _ = ct_case
    back = nodes.image_from_volume_node(volume)
    assert back.spacing == pytest.approx(image.spacing) and back.origin == pytest.approx(image.origin)
    np.testing.assert_allclose(back.direction, image.direction, atol=1e-9)
    np.testing.assert_array_equal(back.array, image.array)


def test_evaluate_fast_against_normal_matches_independent_dice(ct_case, sample_data) -> None:
    from OrganSegBenchLib import evaluate, segments

    _, volume, normal, fast = ct_case
    names = {i["name"] for i in segments.segment_infos(normal)}
    assert "liver" in names and "pancreas" in names
    rows, _ = evaluate.evaluate_segmentations(normal, fast, volume, metrics=["dsc"])
    by = {r["structure"]: r for r in rows}
    expected = _liver_dice(sample_data)
    assert by["liver"]["dsc"] == pytest.approx(expected, abs=1e-9)
    assert 0.95 < by["liver"]["dsc"] < 1.0


def test_review_and_error_map_on_the_liver(ct_case, tmp_path) -> None:
    from ErrorDistributionLib.errormap import compute_error_map
    from OrganSegBenchLib.segments import segment_infos
    from SegmentationReviewLib.review import ReviewLogic

    _, volume, normal, fast = ct_case
    review = ReviewLogic(volume)
    review.add_segmentation_node(normal, "normal")
    review.add_segmentation_node(fast, "fast")
    rows = {r["structure"]: r for r in review.structure_rows()}
    assert rows["liver"]["models"] == 2
    session = review.open_session(tmp_path / "review.json")
    assert "liver" in session.structures
    seg_id = {n: next(i["id"] for i in segment_infos(node) if i["name"] == "liver")
              for n, node in (("normal", normal), ("fast", fast))}
    em = compute_error_map(normal, seg_id["normal"], fast, seg_id["fast"], volume, tolerance_mm=3.0)
    assert em.stats["vertices"] > 1000
    assert abs(em.stats["mean_mm"]) < 2.0 and em.stats["p95_abs_mm"] < 10.0
