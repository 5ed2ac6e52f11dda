"""Fusion strategies on synthetic inputs with known answers (organsegbench.fusion)."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic

from organsegbench.errors import ConfigError, GeometryMismatchError, UnknownNameError
from organsegbench.fusion import FUSION_METHODS, fuse, register_method
from organsegbench.io.image import Image


def _three_masks():
    a = synthetic.box((4, 20, 20), (0, 4, 4), (4, 14, 14))
    b = synthetic.box((4, 20, 20), (0, 6, 4), (4, 16, 14))
    c = synthetic.box((4, 20, 20), (0, 4, 8), (4, 14, 18))
    return [m.astype(np.uint8) for m in (a, b, c)]


def test_majority_of_three_known_masks():
    masks = _three_masks()
    votes = np.sum(masks, axis=0)
    res = fuse(masks, "majority", names=["A", "B", "C"])
    np.testing.assert_array_equal(res.array, (votes >= 2).astype(np.uint8))
    assert set(res.per_model) == {"A", "B", "C"}


def test_mean_threshold_is_inclusive_and_configurable():
    masks = _three_masks()
    votes = np.sum(masks, axis=0)
    for thr, need in ((0.3, 1), (0.5, 2), (0.67, 3), (1.0, 3)):
        res = fuse(masks, "mean", threshold=thr)
        np.testing.assert_array_equal(res.array, (votes >= need).astype(np.uint8), err_msg=f"threshold {thr}")
    np.testing.assert_allclose(res.probability, votes / 3)
    soft = [np.full((2, 3, 3), p) for p in (0.2, 0.5, 0.8)]
    assert fuse(soft, "mean", threshold=0.5).array.all() and not fuse(soft, "mean", threshold=0.51).array.any()


def test_staple_on_identical_inputs_returns_the_input_with_unit_performance():
    m = _three_masks()[0]
    res = fuse([m, m, m], "staple", names=["x", "y", "z"])
    np.testing.assert_array_equal(res.array, m)
    for stats in res.per_model.values():
        assert stats["staple_sensitivity"] == pytest.approx(1.0, abs=1e-6)
        assert stats["staple_specificity"] == pytest.approx(1.0, abs=1e-6)


def test_staple_ranks_a_worse_model_lower():
    masks = _three_masks()
    good = masks[0]
    shrunk = good.copy()
    shrunk[:, 4:9, :] = 0  # misses half the structure
    res = fuse([good, good.copy(), shrunk], "staple", names=["g1", "g2", "bad"])
    np.testing.assert_array_equal(res.array, good)
    assert res.per_model["bad"]["staple_sensitivity"] == pytest.approx(0.5, abs=0.02)
    assert res.per_model["g1"]["staple_sensitivity"] > 0.99


def test_multilabel_staple_and_confusion_matrix():
    base = np.zeros((1, 20, 20), np.uint8)
    base[0, 2:8, 2:8] = 1
    base[0, 10:18, 10:18] = 2
    over = base.copy()
    over[0, 0:2, 2:8] = 1  # one model paints label 1 into the background
    res = fuse([base, base.copy(), over], "staple")  # several labels: goes to multi-label STAPLE
    np.testing.assert_array_equal(res.array, base)
    st = res.per_model["model_3"]
    assert st["staple_sensitivity"] == {1: pytest.approx(1.0), 2: pytest.approx(1.0)}
    assert st["staple_specificity"][1] < 1.0 and st["staple_specificity"][2] == pytest.approx(1.0)
    cm = np.asarray(st["confusion_matrix_observed_by_true"])
    assert cm.shape == (4, 3) and cm[1, 0] > 0  # observed 1 where the truth is background


def test_images_keep_their_grid_and_mismatched_grids_are_refused():
    masks = _three_masks()
    imgs = [synthetic.image(m, (0.8, 0.8, 2.0), (10.0, 20.0, 30.0)) for m in masks]
    res = fuse(imgs, "majority")
    assert isinstance(res.labelmap, Image) and res.labelmap.spacing == (0.8, 0.8, 2.0)
    imgs[2] = synthetic.image(masks[2], (1.0, 1.0, 2.0))
    with pytest.raises(GeometryMismatchError, match="spacing"):
        fuse(imgs, "majority")


def test_different_vocabularies_are_harmonised_before_fusion():
    a = np.zeros((1, 10, 10), np.uint8)
    a[0, 1:5, 1:5] = 1  # liver
    a[0, 6:9, 6:9] = 2  # spleen
    b = np.zeros_like(a)
    b[0, 1:5, 1:5] = 7  # liver under another number; this model has no spleen
    res = fuse([a, b], "mean", labels=[{1: "liver", 2: "spleen"}, {7: "liver"}], threshold=1.0)
    assert res.labels == {1: "liver"}
    np.testing.assert_array_equal(res.array, (a == 1).astype(np.uint8))
    assert res.metadata["dropped_structures_not_in_every_input"] == ["spleen"]


def test_bad_inputs_are_named():
    masks = _three_masks()
    with pytest.raises(UnknownNameError, match="stapel"):
        fuse(masks, "stapel")
    with pytest.raises(ConfigError, match="at least 2"):
        fuse(masks[:1], "majority")
    with pytest.raises(ConfigError, match="threshold"):
        fuse(masks, "mean", threshold=1.5)
    with pytest.raises(ConfigError, match="empty"):
        fuse([np.zeros((2, 4, 4), np.uint8)] * 3, "staple")
    with pytest.raises(ConfigError, match="dtype"):
        fuse([m.astype(float) * 0.7 for m in masks], "majority")


def test_registry_accepts_new_strategies():
    @register_method("union_test", "union of all inputs (test only)")
    def union(arrays):
        return np.any(arrays, axis=0).astype(np.uint8), None, {}

    try:
        masks = _three_masks()
        np.testing.assert_array_equal(fuse(masks, "union_test").array, np.any(masks, axis=0))
    finally:
        FUSION_METHODS.pop("union_test")
