"""`evaluate` on the real sample data: TotalSegmentator --fast and --roi_subset runs against its normal output
(abdominal CT) and the MR model's roi_subset run against its full MR output."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from organsegbench.cli import main
from organsegbench.cohort import EvalOptions, evaluate_cohort

pytestmark = pytest.mark.slow


def _cohort(sample_data, tmp_path: Path) -> Path:
    a = sample_data.case("abdomen_ct")
    mr = sample_data.case("mr")
    cases = [
        {"id": "abdomen_ct", "image": str(a.path("image")), "reference": str(a.path("seg_normal")),
         "predictions": {"fast": str(a.path("seg_fast")), "roi_subset": str(a.path("seg_roi_subset"))},
         "attributes": {"sex": "F", "age": 45}},
        # per-case vocabularies: the MR case uses TotalSegmentator's MR label map
        {"id": "mr", "image": str(mr.path("image")), "reference": str(mr.path("seg")),
         "predictions": {"roi_subset": str(mr.path("seg_roi_subset"))}, "attributes": {"sex": "F", "age": 45},
         "vocabularies": {"reference": "total_mr", "roi_subset": "total_mr"}},
    ]
    path = tmp_path / "sample.yaml"
    path.write_text(yaml.safe_dump({"name": "TotalSegmentator fast vs normal",
                                    "vocabularies": {"reference": "total", "fast": "total", "roi_subset": "total"},
                                    "cases": cases}))
    return path


def test_evaluate_sample_data_fast_vs_normal(sample_data, tmp_path: Path) -> None:
    path = _cohort(sample_data, tmp_path)
    r = evaluate_cohort(path, tmp_path / "out", EvalOptions(metrics=("dsc", "hd95", "nsd")), workers=1,
                        progress=False)
    t = r.table
    assert r.summary["missing"] == 1  # fast is not listed for the MR case: counted, not dropped
    assert set(t[t.case == "mr"]["model"]) == {"fast", "roi_subset"}
    liver = t[(t.case == "abdomen_ct") & (t.model == "fast") & (t.structure == "liver")].set_index("metric")
    assert 0.8 < liver.loc["dsc", "value"] < 1.0  # fast (3 mm model) agrees well but not perfectly on the liver
    assert liver.loc["hd95", "value"] > 0
    # harmonised names: lung lobes of TotalSegmentator are merged into lung_left / lung_right
    assert "lung_upper_lobe_left" not in set(t["structure"])
    html = (tmp_path / "out" / "report.html").read_text()
    assert "TotalSegmentator fast vs normal" in html and "thumbnail unavailable" not in html


def test_cli_rerun_on_sample_data_uses_cache(sample_data, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _cohort(sample_data, tmp_path)
    args = ["evaluate", str(path), "--out", str(tmp_path / "o"), "--metrics", "dsc", "--workers", "1",
            "--no-progress", "--no-report"]
    assert main(args) == 0
    assert "2 evaluated, 0 from cache" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 evaluated, 2 from cache" in capsys.readouterr().out
