"""Real label maps: TotalSegmentator normal vs --fast on its own abdominal CT, against medpy and surface-distance."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from organsegbench import metrics as M

medpy_binary = pytest.importorskip("medpy.metric.binary")
surface_distance = pytest.importorskip("surface_distance")


def _read(path) -> tuple[np.ndarray, tuple[float, float, float]]:
    img = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(img), tuple(reversed(img.GetSpacing()))


def test_real_totalsegmentator_maps_match_medpy_and_surface_distance(sample_data) -> None:
    ref, sp = _read(sample_data.path("abdomen_ct", "seg_normal"))
    pred, sp_pred = _read(sample_data.path("abdomen_ct", "seg_fast"))
    assert ref.shape == pred.shape and sp == pytest.approx(sp_pred)
    results = M.evaluate_pair(ref, pred, sp, metrics=["dsc", "hd", "hd95", "assd", "nsd"])
    got = {(r.label, r.metric): r for r in results}
    labels = sorted({r.label for r in results})
    assert len(labels) >= 40  # 41 structures in the normal output, 40 in the fast one
    for label in labels:
        r, p = ref == label, pred == label
        if not (r.any() and p.any()):
            assert got[(label, "hd95")].reason in (M.REFERENCE_EMPTY, M.PREDICTION_EMPTY)
            continue
        assert got[(label, "dsc")].value == pytest.approx(medpy_binary.dc(p, r), rel=1e-12)
        for name in ("hd", "hd95", "assd"):
            expected = getattr(medpy_binary, name)(p, r, sp)
            assert got[(label, name)].value == pytest.approx(expected, rel=1e-9, abs=1e-12), (label, name)
        sd = surface_distance.compute_surface_distances(r, p, sp)
        expected = surface_distance.compute_surface_dice_at_tolerance(sd, 2.0)
        assert got[(label, "nsd")].value == pytest.approx(expected, rel=1e-9), label
