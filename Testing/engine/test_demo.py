"""The README's main job: the demo's per-structure table must agree with an independent computation."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk


@pytest.fixture(scope="module")
def demo_compare(sample_data, tmp_path_factory):
    from organsegbench.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, progress=False, stages=("compare",))


def _rows(path):
    with open(path, newline="") as fh:
        return {r["structure"]: r for r in csv.DictReader(fh)}


def test_demo_table_matches_independent_computation(demo_compare, sample_data):
    rows = _rows(demo_compare.files["structures_csv"])
    normal = sitk.ReadImage(str(sample_data.path("abdomen_ct", "seg_normal")))
    fast = sitk.ReadImage(str(sample_data.path("abdomen_ct", "seg_fast")))
    stats_n, stats_f = sitk.LabelShapeStatisticsImageFilter(), sitk.LabelShapeStatisticsImageFilter()
    stats_n.Execute(normal)
    stats_f.Execute(fast)
    a, b = sitk.GetArrayFromImage(normal), sitk.GetArrayFromImage(fast)
    for name, label in (("liver", 5), ("pancreas", 7), ("spleen", 1), ("aorta", 52)):
        row = rows[name]
        m, n = a == label, b == label
        dsc = 2 * np.count_nonzero(m & n) / (np.count_nonzero(m) + np.count_nonzero(n))
        assert float(row["dsc"]) == pytest.approx(dsc, abs=1e-6)
        assert float(row["volume_normal_ml"]) == pytest.approx(stats_n.GetPhysicalSize(label) / 1000, rel=1e-6)
        assert float(row["volume_fast_ml"]) == pytest.approx(stats_f.GetPhysicalSize(label) / 1000, rel=1e-6)
    assert float(rows["liver"]["dsc"]) == pytest.approx(0.98, abs=0.01)
    assert float(rows["pancreas"]["dsc"]) == pytest.approx(0.81, abs=0.01)


def test_demo_table_covers_every_label_and_records_provenance(demo_compare, sample_data):
    import json

    rows = _rows(demo_compare.files["structures_csv"])
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_data.path("abdomen_ct", "seg_normal"))))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_data.path("abdomen_ct", "seg_fast"))))
    present = (set(np.unique(a).tolist()) | set(np.unique(b).tolist())) - {0}
    assert {int(r["label"]) for r in rows.values()} == present
    only_one = [r for r in rows.values() if r["note"]]
    assert all(r["hd95_mm"] == "" for r in only_one)  # empty side: no silent 0 distance
    meta = json.loads(demo_compare.files["structures_csv"].with_suffix(".provenance.json").read_text())
    assert len(meta["inputs_sha256"]) == 3 and "numpy" in meta["versions"]


def test_demo_overlay_png_is_a_real_figure(demo_compare):
    from PIL import Image as PILImage

    png = demo_compare.files["overlay_png"]
    with PILImage.open(png) as im:
        w, h = im.size
        arr = np.asarray(im.convert("RGB"))
    assert w > 800 and h > 300
    assert len(np.unique(arr.reshape(-1, 3), axis=0)) > 50  # CT greys plus coloured contours, not a blank canvas


def test_demo_evaluation_stage_agrees_with_the_structure_table(sample_data, tmp_path):
    import pandas as pd

    from organsegbench.demo import run_demo

    res = run_demo(tmp_path, progress=False, stages=("compare", "evaluate"))
    table = pd.read_csv(res.files["results_csv"])
    rows = _rows(res.files["structures_csv"])
    liver = table[(table.structure == "liver") & (table.metric == "dsc")]
    assert liver["value"].iloc[0] == pytest.approx(float(rows["liver"]["dsc"]), abs=1e-6)
    html = res.files["report_html"].read_text()
    assert "TotalSegmentator --fast vs normal" in html and "<img" in html


def test_demo_errormap_and_consensus_stage(sample_data, tmp_path):
    import json

    from organsegbench.demo import run_demo

    res = run_demo(tmp_path, progress=False, stages=("errormap",))
    summary = json.loads(res.files["errormap_summary"].read_text())
    assert summary["files"] and res.files["errormap_prediction_png"].stat().st_size > 10_000
    normal = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_data.path("abdomen_ct", "seg_normal")))) == 5
    fast = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_data.path("abdomen_ct", "seg_fast")))) == 5
    consensus = sitk.GetArrayFromImage(sitk.ReadImage(str(res.files["consensus_staple"]))) > 0
    # the consensus keeps what both agree on and stays within what either one marks
    assert np.all(consensus[normal & fast]) and not np.any(consensus[~normal & ~fast])
    report = json.loads(res.files["consensus_staple"].with_suffix("").with_suffix(".json").read_text())
    assert set(report["per_model"]) == {"normal", "fast"}
    assert 0.9 < report["per_model"]["fast"]["staple_sensitivity"] <= 1.0
