"""Cohort evaluation end to end: harmonised names, outputs, resumable cache, missing files, geometry, parallelism."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from test_cohort import SHAPE, make_cohort, rewrite_csv, write_nii

from organsegbench.cli import main
from organsegbench.cohort import EvalOptions, evaluate_case, evaluate_cohort
from organsegbench.errors import GeometryMismatchError
from organsegbench.metrics import dice, hd95


class Counter:
    """Wraps evaluate_case and counts the cases it really evaluates (serial runs only)."""

    def __init__(self) -> None:
        self.cases: list[str] = []

    def __call__(self, case, options):
        self.cases.append(case.id)
        return evaluate_case(case, options)


@pytest.fixture(scope="module")
def cohort12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cohort(tmp_path_factory.mktemp("cohort12"), n=12)


@pytest.fixture(scope="module")
def run12(cohort12: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("out12")
    return evaluate_cohort(cohort12, out, EvalOptions(metrics=("dsc", "hd95", "nsd")), workers=1, progress=False)


def _read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_end_to_end_outputs_and_harmonised_values(run12, cohort12: Path) -> None:
    out, t = run12.out_dir, run12.table
    for name in ("results.csv", "results.parquet", "cases.csv", "summary.json", "report.html",
                 "analysis/worst_cases.csv", "analysis/fairness.csv", "analysis/fairness_overall.csv",
                 "analysis/generalisation.csv", "analysis/volume_error_summary.csv",
                 "analysis/bland_altman_volumes.csv", "analysis/accuracy.csv"):
        assert (out / name).is_file(), name
    assert {"case", "model", "structure", "metric", "value", "reason", "status", "prediction_file", "cache_key",
            "engine_version"} <= set(t.columns)
    assert set(t["structure"]) == {"liver", "spleen", "kidney_left"}  # model b's MOOSE labels harmonised
    assert set(t["metric"]) == {"dsc", "hd95", "nsd", "volume_ref", "volume_pred"}
    parquet = pd.read_parquet(out / "results.parquet")
    assert len(parquet) == len(t) == 12 * 2 * 3 * 5
    # model b's liver (MOOSE label 8) against the reference liver (TotalSegmentator label 5), recomputed here
    root = cohort12.parent
    ref, pred = _read(root / "ref" / "case03.nii.gz") == 5, _read(root / "b" / "case03.nii.gz") == 8
    row = t[(t.case == "case03") & (t.model == "b") & (t.structure == "liver")].set_index("metric")["value"]
    assert row["dsc"] == pytest.approx(dice(ref, pred))
    assert row["hd95"] == pytest.approx(hd95(ref, pred, (2.0, 1.0, 1.2)))
    s = json.loads((out / "summary.json").read_text())
    assert s["evaluated"] == 12 and s["cached"] == 0 and s["ok"] == 24 and s["missing"] == 0
    assert s["provenance"]["versions"]["numpy"]


def test_rerun_skips_finished_cases_and_reruns_changed_ones(tmp_path: Path) -> None:
    cohort12 = make_cohort(tmp_path / "c", n=12)  # own copy: this test edits a prediction
    tmp_path = tmp_path / "out"
    opts = EvalOptions(metrics=("dsc",))
    first = Counter()
    r1 = evaluate_cohort(cohort12, tmp_path, opts, workers=1, progress=False, report=False, evaluate=first)
    assert len(first.cases) == 12
    again = Counter()
    r2 = evaluate_cohort(cohort12, tmp_path, opts, workers=1, progress=False, report=False, evaluate=again)
    assert again.cases == [] and r2.summary["cached"] == 12 and r2.summary["evaluated"] == 0
    pd.testing.assert_series_equal(r1.table["value"], r2.table["value"])
    # a changed prediction file invalidates exactly its case
    f = cohort12.parent / "a" / "case05.nii.gz"
    arr = _read(f)
    write_nii(np.roll(arr, 1, axis=0), f)
    os.utime(f, ns=(1, 1))  # a different mtime even on coarse clocks
    third = Counter()
    r3 = evaluate_cohort(cohort12, tmp_path, opts, workers=1, progress=False, report=False, evaluate=third)
    assert third.cases == ["case05"] and r3.summary["evaluated"] == 1
    # other options invalidate every case
    fourth = Counter()
    evaluate_cohort(cohort12, tmp_path, EvalOptions(metrics=("dsc",), nsd_tolerance_mm=1.0), workers=1,
                    progress=False, report=False, evaluate=fourth)
    assert len(fourth.cases) == 12


def test_missing_prediction_marks_row_and_run_continues(tmp_path: Path) -> None:
    path = make_cohort(tmp_path / "c", n=4)
    (tmp_path / "c" / "b" / "case02.nii.gz").unlink()
    r = evaluate_cohort(path, tmp_path / "out", EvalOptions(metrics=("dsc", "hd95")), workers=1, progress=False)
    miss = r.table[r.table.status == "missing"]
    assert len(miss) == 1 and miss.iloc[0]["case"] == "case02" and miss.iloc[0]["model"] == "b"
    assert "prediction file not found" in miss.iloc[0]["reason"] and "case02" in miss.iloc[0]["reason"]
    assert r.summary["missing"] == 1 and r.summary["ok"] == 7
    assert set(r.table[r.table.status == "ok"]["case"]) == {"case00", "case01", "case02", "case03"}
    assert "case02" not in set(r.analyses["worst_cases"].query("model == 'b'")["case"])
    assert "1 missing" in (tmp_path / "out" / "report.html").read_text()


def test_missing_reference_and_corrupt_prediction_are_marked_and_counted(tmp_path: Path) -> None:
    path = make_cohort(tmp_path / "c", n=3)
    (tmp_path / "c" / "ref" / "case00.nii.gz").unlink()
    (tmp_path / "c" / "a" / "case01.nii.gz").write_bytes(b"not a nifti file")
    r = evaluate_cohort(path, tmp_path / "out", EvalOptions(metrics=("dsc",)), workers=1, progress=False,
                        report=False)
    by_pair = r.table.groupby(["case", "model"])["status"].first()
    assert by_pair[("case00", "a")] == by_pair[("case00", "b")] == "missing"
    assert by_pair[("case01", "a")] == "error" and by_pair[("case01", "b")] == "ok"
    reasons = r.table.drop_duplicates(["case", "model"]).set_index(["case", "model"])["reason"]
    assert "reference file not found" in reasons[("case00", "a")]
    assert "case01.nii.gz" in reasons[("case01", "a")]
    assert r.summary["missing"] == 2 and r.summary["errors"] == 1 and r.summary["ok"] == 3


def test_cohort_without_image_column_still_reports(tmp_path: Path) -> None:
    path = rewrite_csv(make_cohort(tmp_path / "c", n=3), drop=("image",))
    r = evaluate_cohort(path, tmp_path / "out", EvalOptions(metrics=("dsc",)), workers=1, progress=False)
    assert r.summary["ok"] == 6
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("<figure><img src='data:image/png;base64,") == 6 and "thumbnail unavailable" not in html


def test_geometry_mismatch_errors_unless_resample(tmp_path: Path) -> None:
    path = make_cohort(tmp_path / "c", n=3)
    f = tmp_path / "c" / "a" / "case01.nii.gz"
    write_nii(_read(f), f, spacing=(1.2, 1.0, 2.0), origin=(3.0, 0.0, 0.0))
    with pytest.raises(GeometryMismatchError) as exc:
        evaluate_cohort(path, tmp_path / "out", EvalOptions(metrics=("dsc",)), workers=1, progress=False)
    assert "'case01'" in exc.value.message and "origin" in exc.value.message
    assert "--resample" in exc.value.hint
    r = evaluate_cohort(path, tmp_path / "out", EvalOptions(metrics=("dsc",), resample=True), workers=1,
                        progress=False, report=False)
    rows = r.table[(r.table.case == "case01") & (r.table.model == "a")]
    assert (rows["resampled"] == "True").all() and (rows["status"] == "ok").all()


def test_process_pool_and_dask_match_serial(run12, cohort12: Path, tmp_path: Path) -> None:
    from distributed import LocalCluster

    opts = EvalOptions(metrics=("dsc", "hd95", "nsd"))
    pool = evaluate_cohort(cohort12, tmp_path / "pool", opts, workers=2, progress=False, report=False)
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None) as cluster:
        dask = evaluate_cohort(cohort12, tmp_path / "dask", opts, scheduler=cluster.scheduler_address,
                               progress=False, report=False)
    key = ["case", "model", "structure", "metric"]
    ref = run12.table.sort_values(key)["value"].to_numpy()
    for r in (pool, dask):
        assert r.summary["evaluated"] == 12
        np.testing.assert_array_equal(r.table.sort_values(key)["value"].to_numpy(), ref)
    assert dask.summary["scheduler"].startswith("inproc://") or "://" in dask.summary["scheduler"]


def test_unreachable_scheduler_is_a_clear_error(cohort12: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from organsegbench.cohort import runner
    from organsegbench.errors import OrganSegBenchError

    monkeypatch.setattr(runner, "SCHEDULER_TIMEOUT_S", 1.0)
    with pytest.raises(OrganSegBenchError, match="cannot reach the Dask scheduler") as exc:
        evaluate_cohort(cohort12, tmp_path, EvalOptions(metrics=("dsc",)), scheduler="tcp://127.0.0.1:1",
                        progress=False)
    assert "--scheduler" in exc.value.hint


def test_one_group_attribute_is_not_testable(tmp_path: Path) -> None:
    path = make_cohort(tmp_path / "c", n=4, extra_attrs={"site": "hospital_a"})
    r = evaluate_cohort(path, tmp_path / "out", EvalOptions(metrics=("dsc",)), workers=1, progress=False,
                        attributes=["site", "sex"])
    f = r.analyses["fairness"]
    site = f[f.attribute == "site"]
    assert len(site) and not site["testable"].any()
    assert site["reason"].str.contains("fewer than 2 groups").all()
    ov = r.analyses["fairness_overall"]
    assert (ov[ov.attribute == "site"]["status"] == "not testable").all()
    assert "not testable" in (tmp_path / "out" / "report.html").read_text().lower()


def test_cli_evaluate_and_bad_inputs(cohort12: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    code = main(["evaluate", str(cohort12), "--out", str(out), "--workers", "1", "--no-progress", "--no-report",
                 "--metrics", "dsc,hd95", "--structures", "liver", "spleen"])
    assert code == 0
    text = capsys.readouterr().out
    assert "12 cases x 2 models: 12 evaluated" in text
    t = pd.read_parquet(out / "results.parquet")
    assert set(t["structure"]) == {"liver", "spleen"}
    assert main(["evaluate", str(cohort12), "--out", str(out), "--structures", "livr", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown structure 'livr'" in err and "liver" in err
    assert main(["evaluate", str(cohort12), "--out", str(out), "--metrics", "dice95", "--no-progress"]) == 2
    assert "unknown metric" in capsys.readouterr().err
    assert main(["evaluate", str(cohort12), "--out", str(out), "--workers", "0"]) == 2
    assert main(["evaluate", str(cohort12), "--out", str(out), "--fairness-metric", "dcs"]) == 2
    assert "dsc" in capsys.readouterr().err
    assert main(["evaluate", str(cohort12), "--out", str(out), "--age-bands", "20,x"]) == 2
    assert "--age-bands" in capsys.readouterr().err
    assert main(["evaluate", str(cohort12), "--out", str(out), "--bands", "weight:50,70"]) == 2
    assert "ATTR=EDGES" in capsys.readouterr().err


def test_shape_constant_is_used() -> None:
    assert len(SHAPE) == 3
