"""Parity with medpy (DSC/IoU/precision/recall/HD/HD95/ASSD/ASD/RAVD) and surface-distance (NSD) on random
shapes, and multi-label results equal to the single-structure functions."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic
from scipy import ndimage as ndi

from organsegbench import metrics as M

medpy_binary = pytest.importorskip("medpy.metric.binary")
surface_distance = pytest.importorskip("surface_distance")

SPACINGS = [(1.0, 1.0, 1.0), (1.5, 0.7, 0.7), (3.0, 0.8, 1.1)]


def _blob(rng: np.random.Generator, shape: tuple[int, ...], level: float) -> np.ndarray:
    """Random smooth shape, sometimes with several islands and holes, sometimes touching the border."""
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma=2.0)
    return field > level * field.std()


def _pairs(seed: int, shape: tuple[int, ...] = (24, 30, 36)):
    rng = np.random.default_rng(seed)
    for _ in range(4):
        ref = _blob(rng, shape, rng.uniform(0.0, 1.0))
        pred = _blob(rng, shape, rng.uniform(0.0, 1.0)) | ndi.shift(ref, (1, 0, 2), order=0)
        if ref.any() and pred.any():
            yield ref, pred


@pytest.mark.parametrize("spacing", SPACINGS)
def test_parity_with_medpy_on_random_shapes(spacing: tuple[float, float, float]) -> None:
    n = 0
    for ref, pred in _pairs(seed=11):
        n += 1
        # medpy's argument order is (result, reference)
        expected = {
            "hd": medpy_binary.hd(pred, ref, spacing),
            "hd95": medpy_binary.hd95(pred, ref, spacing),
            "assd": medpy_binary.assd(pred, ref, spacing),
            "asd_pred_to_ref": medpy_binary.asd(pred, ref, spacing),
            "asd_ref_to_pred": medpy_binary.asd(ref, pred, spacing),
            "dsc": medpy_binary.dc(pred, ref),
            "iou": medpy_binary.jc(pred, ref),
            "precision": medpy_binary.precision(pred, ref),
            "sensitivity": medpy_binary.recall(pred, ref),
            "rvd": medpy_binary.ravd(pred, ref),
        }
        got = {r.metric: r.value for r in M.evaluate_pair(ref, pred, spacing, metrics=list(expected))}
        for name, value in expected.items():
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
            single = M.METRICS[name].function(ref, pred, spacing)
            assert single == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert n >= 3


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("tolerance", [0.0, 0.7, 1.0, 2.0, 5.0])
def test_nsd_parity_with_surface_distance(spacing: tuple[float, float, float], tolerance: float) -> None:
    for ref, pred in _pairs(seed=12):
        sd = surface_distance.compute_surface_distances(ref, pred, spacing)
        expected = surface_distance.compute_surface_dice_at_tolerance(sd, tolerance)
        assert M.nsd(ref, pred, spacing, tolerance_mm=tolerance) == pytest.approx(expected, rel=1e-9)


def test_parity_2d_slices() -> None:
    rng = np.random.default_rng(5)
    ref = _blob(rng, (40, 50), 0.3)
    pred = _blob(rng, (40, 50), 0.2)
    sp = (0.8, 1.3)
    assert M.hd95(ref, pred, sp) == pytest.approx(medpy_binary.hd95(pred, ref, sp), rel=1e-9)
    assert M.assd(ref, pred, sp) == pytest.approx(medpy_binary.assd(pred, ref, sp), rel=1e-9)
    sd = surface_distance.compute_surface_distances(ref, pred, sp)
    assert M.nsd(ref, pred, sp, 1.5) == pytest.approx(surface_distance.compute_surface_dice_at_tolerance(sd, 1.5))


def test_far_false_positive_island_is_exact() -> None:
    shape = (40, 60, 60)
    sp = (1.5, 0.7, 0.7)
    ref = synthetic.sphere(shape, (30, 20, 20), 8.0, sp)
    pred = ndi.shift(ref, (0, 1, 1), order=0) | synthetic.sphere(shape, (50, 38, 38), 2.0, sp)
    value = M.hd(ref, pred, sp)
    assert value == pytest.approx(medpy_binary.hd(pred, ref, sp), rel=1e-12)
    assert value > 20.0  # the island, not the shifted organ, sets the Hausdorff distance
    assert M.hd95(ref, pred, sp) == pytest.approx(medpy_binary.hd95(pred, ref, sp), rel=1e-12)


def test_multilabel_equals_single_structure_results() -> None:
    shape = (32, 40, 48)
    sp = (2.0, 0.8, 0.8)
    ref = synthetic.random_blobs(shape, 6, seed=1)
    pred = np.roll(synthetic.random_blobs(shape, 6, seed=1), 2, axis=2)
    pred[pred == 4] = 0  # one structure missed by the prediction
    pred[2:4, 2:4, 2:4] = 9  # one structure only in the prediction
    results = M.evaluate_pair(ref, pred, sp, nsd_tolerance_mm=1.5)
    labels = sorted({r.label for r in results})
    assert labels == sorted(int(v) for v in (set(np.unique(ref)) | set(np.unique(pred))) - {0})
    assert len(results) == len(labels) * len(M.METRICS)
    for r in results:
        kwargs = {"tolerance_mm": 1.5} if r.metric == "nsd" else {}
        single = M.METRICS[r.metric].function(ref == r.label, pred == r.label, sp, **kwargs)
        assert (np.isnan(single) and np.isnan(r.value)) or single == r.value, (r, single)


def test_labels_and_metric_selection_keep_order() -> None:
    ref = synthetic.random_blobs((20, 20, 20), 3, seed=2)
    res = M.evaluate_pair(ref, ref, (1, 1, 1), labels=[3, 1], metrics=["HD95", "dice"])
    assert [(r.label, r.metric) for r in res] == [(3, "hd95"), (3, "dsc"), (1, "hd95"), (1, "dsc")]
    assert [r.value for r in res] == [0.0, 1.0, 0.0, 1.0]


def test_probe_and_tree_paths_agree() -> None:
    """The offset probe (near points) and the k-d tree (far points) give the same exact distances."""
    from organsegbench.metrics.distance import Crop
    from organsegbench.metrics.surface import Target, voxel_surface

    rng = np.random.default_rng(8)
    sp = np.array([2.5, 0.6, 0.8])
    ref, pred = _blob(rng, (30, 40, 40), 0.8), _blob(rng, (30, 40, 40), 0.6)
    a, b = (voxel_surface(c.crop, c.offset, ref.shape) for c in (Crop.of(ref), Crop.of(pred)))
    tree_only = Target(b, sp, probe_mm=0.0).distances_from(a)
    for probe in (1.0, 3.0, 6.0):
        probed = Target(b, sp, probe_mm=probe).distances_from(a)
        np.testing.assert_allclose(probed, tree_only, rtol=1e-12, atol=0)
    assert (tree_only > 6.0).any() and (tree_only <= 1.0).any()  # both paths were exercised


def test_nsd_fine_spacing_uses_tree_fallback() -> None:
    """A tolerance ball with too many voxel offsets goes through bounded k-d tree queries; same result."""
    rng = np.random.default_rng(9)
    sp = (0.25, 0.25, 0.25)
    ref, pred = _blob(rng, (24, 24, 24), 0.5), _blob(rng, (24, 24, 24), 0.4)
    sd = surface_distance.compute_surface_distances(ref, pred, sp)
    expected = surface_distance.compute_surface_dice_at_tolerance(sd, 2.0)
    assert M.nsd(ref, pred, sp, tolerance_mm=2.0) == pytest.approx(expected, rel=1e-9)


def test_two_threads_give_identical_results() -> None:
    ref = synthetic.random_blobs((24, 32, 32), 4, seed=4)
    pred = np.roll(ref, 1, axis=1)
    one = M.evaluate_pair(ref, pred, (1.2, 0.9, 0.9), workers=1)
    two = M.evaluate_pair(ref, pred, (1.2, 0.9, 0.9), workers=2)
    assert [(r.label, r.metric) for r in one] == [(r.label, r.metric) for r in two]
    np.testing.assert_array_equal([r.value for r in one], [r.value for r in two])


def test_border_touching_masks_match_medpy() -> None:
    """Masks cut by the volume border: the border voxels are surface voxels (erosion with border value 0)."""
    shape = (20, 24, 28)
    sp = (2.0, 0.7, 0.7)
    ref = synthetic.sphere(shape, (0.0, 8.0, 9.0), 12.0, sp)  # centred on the first slice: cut by the border
    pred = synthetic.box(shape, (0, 0, 0), (6, 24, 10))  # touches five faces of the volume
    assert ref[0].any() and pred[:, -1].any()
    for name in ("hd", "hd95", "assd"):
        expected = getattr(medpy_binary, name)(pred, ref, sp)
        assert M.METRICS[name].function(ref, pred, sp) == pytest.approx(expected, rel=1e-12), name
    sd = surface_distance.compute_surface_distances(ref, pred, sp)
    assert M.nsd(ref, pred, sp, 1.0) == pytest.approx(surface_distance.compute_surface_dice_at_tolerance(sd, 1.0))
