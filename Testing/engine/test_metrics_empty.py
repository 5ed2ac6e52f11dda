"""Empty-mask policy (never a crash, never a silent 0 distance), bad inputs and the metric registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import synthetic

from organsegbench import metrics as M
from organsegbench.errors import GeometryMismatchError, OrganSegBenchError, UnknownNameError

SP = (1.5, 0.7, 0.7)
DISTANCES = ("hd", "hd95", "assd", "asd_ref_to_pred", "asd_pred_to_ref")


def _by_metric(results: list[M.MetricResult]) -> dict[str, M.MetricResult]:
    return {r.metric: r for r in results}


def _some() -> np.ndarray:
    return synthetic.box((12, 12, 12), (3, 3, 3), (7, 7, 7))


def test_both_empty() -> None:
    empty = np.zeros((12, 12, 12), dtype=np.uint8)
    got = _by_metric(M.evaluate_pair(empty, empty, SP, labels=[1]))
    for name in ("dsc", "iou", "sensitivity", "precision", "nsd", "volume_error_rate", "rvd", *DISTANCES):
        assert math.isnan(got[name].value) and got[name].reason == M.BOTH_EMPTY, name
    assert got["volume_ref"].value == 0.0 and got["volume_pred"].value == 0.0
    assert got["volume_ref"].reason is None
    assert math.isnan(M.dice(empty, empty)) and math.isnan(M.hd95(empty, empty, SP))


def test_reference_empty() -> None:
    ref = np.zeros((12, 12, 12), dtype=bool)
    got = _by_metric(M.evaluate_pair(ref, _some(), SP))
    assert [got[n].value for n in ("dsc", "iou", "precision", "nsd")] == [0.0, 0.0, 0.0, 0.0]
    for name in ("sensitivity", "volume_error_rate", "rvd", *DISTANCES):
        assert math.isnan(got[name].value) and got[name].reason == M.REFERENCE_EMPTY, name
        assert not got[name].defined
    assert got["volume_pred"].value == pytest.approx(64 * 1.5 * 0.7 * 0.7 / 1000)


def test_prediction_empty() -> None:
    pred = np.zeros((12, 12, 12), dtype=bool)
    got = _by_metric(M.evaluate_pair(_some(), pred, SP))
    assert [got[n].value for n in ("dsc", "iou", "sensitivity", "nsd")] == [0.0, 0.0, 0.0, 0.0]
    assert got["volume_error_rate"].value == 1.0 and got["rvd"].value == -1.0
    for name in ("precision", *DISTANCES):
        assert math.isnan(got[name].value) and got[name].reason == M.PREDICTION_EMPTY, name
    for f in (M.hd, M.hd95, M.assd, M.asd_ref_to_pred, M.asd_pred_to_ref):
        assert math.isnan(f(_some(), pred, SP))


def test_defined_results_have_no_reason() -> None:
    got = M.evaluate_pair(_some(), np.roll(_some(), 1, axis=0), SP)
    assert all(r.defined and r.reason is None for r in got)


def test_labels_none_evaluates_labels_present_in_either_map() -> None:
    ref = np.zeros((10, 10, 10), dtype=np.int16)
    pred = ref.copy()
    ref[1:3, 1:3, 1:3] = 2
    pred[5:7, 5:7, 5:7] = 7
    assert sorted({r.label for r in M.evaluate_pair(ref, pred, SP, metrics=["dsc"])}) == [2, 7]
    assert M.evaluate_pair(np.zeros_like(ref), np.zeros_like(ref), SP) == []


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (1.0, 0.0, 1.0), (1.0, -1.0, 1.0), (1.0, float("nan"), 1.0), "abc"])
def test_bad_spacing_is_named(spacing: object) -> None:
    with pytest.raises(OrganSegBenchError, match="spacing_zyx"):
        M.hd95(_some(), _some(), spacing)
    with pytest.raises(OrganSegBenchError, match="spacing_zyx"):
        M.evaluate_pair(_some(), _some(), spacing)


def test_shape_mismatch() -> None:
    with pytest.raises(GeometryMismatchError, match=r"\(12, 12, 12\).*\(12, 12, 13\)"):
        M.dice(_some(), np.zeros((12, 12, 13), dtype=bool))
    with pytest.raises(GeometryMismatchError, match="resample"):
        M.evaluate_pair(_some(), np.zeros((12, 12, 13), dtype=bool), SP)


def test_unknown_metric_lists_close_matches() -> None:
    with pytest.raises(UnknownNameError) as err:
        M.evaluate_pair(_some(), _some(), SP, metrics=["hd96"])
    assert "hd95" in str(err.value)
    assert M.resolve_metrics(["Dice", "jaccard", "HD95", "dsc"]) == ["dsc", "iou", "hd95"]


@pytest.mark.parametrize("labels", [[0], [-1], [1.5], ["liver"]])
def test_bad_labels(labels: list[object]) -> None:
    with pytest.raises(OrganSegBenchError, match="label"):
        M.evaluate_pair(_some(), _some(), SP, labels=labels)


def test_bad_label_maps_and_tolerance() -> None:
    with pytest.raises(OrganSegBenchError, match="non-integer"):
        M.evaluate_pair(_some() * 0.5, _some(), SP)
    with pytest.raises(OrganSegBenchError, match="negative"):
        M.evaluate_pair(-_some().astype(np.int8), _some(), SP)
    with pytest.raises(OrganSegBenchError, match="2D or 3D"):
        M.dice(np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 4, 5)))
    with pytest.raises(OrganSegBenchError, match="tolerance"):
        M.nsd(_some(), _some(), SP, tolerance_mm=-1)


def test_registry_is_complete_and_documented() -> None:
    expected = {"dsc", "iou", "sensitivity", "precision", "hd", "hd95", "assd", "asd_ref_to_pred",
                "asd_pred_to_ref", "nsd", "volume_ref", "volume_pred", "volume_error_rate", "rvd"}
    assert set(M.METRICS) == expected
    for spec in M.METRICS.values():
        assert spec.unit in {"mm", "mL", "fraction"} and spec.description and spec.function.__doc__


def test_labels_may_be_a_name_mapping() -> None:
    ref = synthetic.random_blobs((16, 16, 16), 2, seed=6)
    res = M.evaluate_pair(ref, ref, SP, labels={2: "spleen", 1: "liver"}, metrics=["dsc"])
    assert [(r.label, r.value) for r in res] == [(2, 1.0), (1, 1.0)]
