"""Command line: errormap, errormap-cohort and fuse on synthetic label maps (bad inputs included)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import synthetic

from organsegbench.cli import main
from organsegbench.io import read_image, write_image

SHAPE = (40, 48, 56)


def _write(path, *balls, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    """Label map with (label, centre_zyx, radius) balls, written with its geometry."""
    arr = np.zeros(SHAPE, np.uint8)
    for label, centre, radius in balls:
        arr[synthetic.sphere(SHAPE, centre, radius)] = label
    write_image(synthetic.image(arr, spacing, origin), path)
    return path


def test_errormap_writes_meshes_pngs_and_summary(tmp_path, capsys):
    ref = _write(tmp_path / "ref.nii.gz", (5, (20, 24, 28), 10.0), (1, (20, 24, 8), 4.0))  # liver + spleen
    pred = _write(tmp_path / "pred.nii.gz", (5, (20, 24, 30), 10.0), (1, (20, 24, 8), 4.0))
    out = tmp_path / "out"
    rc = main(["errormap", "--ref", str(ref), "--pred", str(pred), "--structure", "liver", "--vocabulary", "total",
               "--out", str(out), "--case", "c7"])
    assert rc == 0
    for name in ("prediction_surface.vtp", "prediction_surface.ply", "prediction_surface.stl",
                 "reference_surface.vtp", "errormap_prediction.png", "errormap_reference.png", "histogram.png",
                 "histogram.csv", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["structure"] == "liver" and summary["case"] == "c7"
    s = summary["summary"]["pred_to_ref"]
    assert s["max_abs_mm"] == pytest.approx(2.0, abs=0.6)  # shifted by 2 mm along x
    assert s["fraction_inside"] > 0.2 and s["fraction_outside"] > 0.2
    assert summary["rendering_backend"] in ("vtk", "matplotlib")
    assert "liver" in capsys.readouterr().out


def test_errormap_seed_vertices_and_method_are_recorded(tmp_path):
    ref = _write(tmp_path / "ref.nii.gz", (5, (20, 24, 28), 10.0))
    pred = _write(tmp_path / "pred.nii.gz", (5, (20, 24, 30), 10.0))
    runs = {}
    for name, extra in (("k3", []), ("k1", ["--seed-vertices", "1"]), ("vertex", ["--method", "vertex"])):
        assert main(["errormap", "--ref", str(ref), "--pred", str(pred), "--vocabulary", "total", "--no-png",
                     "--out", str(tmp_path / name), *extra]) == 0
        runs[name] = json.loads((tmp_path / name / "summary.json").read_text())
    assert runs["k3"]["metadata"]["candidate_vertices_k"] == 3 and runs["k1"]["metadata"]["candidate_vertices_k"] == 1
    assert runs["vertex"]["metadata"]["distance_method"] == "vertex"
    k3, k1, vx = (runs[n]["summary"]["symmetric"]["mean_abs_mm"] for n in ("k3", "k1", "vertex"))
    assert k3 <= k1 + 1e-12 <= vx + 1e-12  # more seeds can only lower an over-estimate; vertices are farther still


def test_errormap_bad_inputs_exit_2_with_a_fix(tmp_path, capsys):
    ref = _write(tmp_path / "ref.nii.gz", (5, (20, 24, 28), 10.0))
    pred = _write(tmp_path / "pred.nii.gz", (1, (20, 24, 28), 10.0))  # only a spleen
    out = str(tmp_path / "o")
    assert main(["errormap", "--ref", str(ref), "--pred", str(pred), "--structure", "liverr",
                 "--vocabulary", "total", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "unknown structure 'liverr'" in err and "fix:" in err
    assert main(["errormap", "--ref", str(ref), "--pred", str(pred), "--structure", "liver",
                 "--vocabulary", "total", "--out", out]) == 2
    assert "structure" in capsys.readouterr().err
    far = _write(tmp_path / "far.nii.gz", (5, (20, 24, 28), 10.0), origin=(900.0, 0.0, 0.0))
    assert main(["errormap", "--ref", str(ref), "--pred", str(far), "--vocabulary", "total",
                 "--out", out]) == 2
    assert "do not overlap" in capsys.readouterr().err


def test_errormap_empty_prediction_builds_no_mesh(tmp_path, capsys):
    ref = _write(tmp_path / "ref.nii.gz", (1, (20, 24, 28), 10.0))
    empty = _write(tmp_path / "empty.nii.gz")
    out = tmp_path / "o"
    assert main(["errormap", "--ref", str(ref), "--pred", str(empty), "--out", str(out)]) == 2
    assert "no voxel" in capsys.readouterr().err
    assert not out.exists() or not list(out.glob("*.vtp"))


def _cohort(tmp_path, n):
    rows = ["id,reference,pred:modelA"]
    for i in range(n):
        _write(tmp_path / f"r{i}.nii.gz", (5, (20, 24, 26 + i), 11.0), (5, (20, 30, 38 + i), 6.0))
        _write(tmp_path / f"p{i}.nii.gz", (5, (20, 24, 27 + i), 11.0), (5, (20, 30, 38 + i), 6.0))
        rows.append(f"c{i},r{i}.nii.gz,p{i}.nii.gz")
    path = tmp_path / "cohort.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_errormap_cohort_on_a_template(tmp_path, capsys):
    out = tmp_path / "cohort_out"
    rc = main(["errormap-cohort", str(_cohort(tmp_path, 3)), "--structure", "liver", "--vocabulary", "total",
               "--out", str(out), "--seed", "4"])
    assert rc == 0
    summary = json.loads((out / "cohort_summary.json").read_text())
    assert summary["n_cases"] == 3 and summary["template_case"] == "c0"
    assert (out / "template_errors.vtp").stat().st_size > 0
    assert (out / "cohort_mean_signed.png").stat().st_size > 0
    from organsegbench.surfaces import read_surface

    tmpl = read_surface(out / "template_errors.vtp")
    assert {"mean_signed_mm", "median_signed_mm", "p5_signed_mm", "p95_signed_mm", "mean_abs_mm",
            "p95_abs_mm"} <= set(tmpl.point_data)


def test_errormap_cohort_with_one_subject_is_refused(tmp_path, capsys):
    rc = main(["errormap-cohort", str(_cohort(tmp_path, 1)), "--structure", "liver", "--vocabulary", "total",
               "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "at least 2 subjects" in capsys.readouterr().err


def test_fuse_cli_writes_label_map_and_report(tmp_path, capsys):
    paths = [_write(tmp_path / f"m{i}.nii.gz", (1, (20, 24, 28 + d), 9.0), spacing=(0.8, 0.8, 2.0))
             for i, d in enumerate((0, 1, -1))]
    out = tmp_path / "fused.nii.gz"
    assert main(["fuse", *map(str, paths), "--method", "majority", "--out", str(out)]) == 0
    fused = read_image(out)
    assert fused.spacing == pytest.approx((0.8, 0.8, 2.0))
    votes = sum((read_image(p).array > 0).astype(int) for p in paths)
    np.testing.assert_array_equal(fused.array > 0, votes >= 2)
    report = json.loads(out.with_name("fused.nii.gz.json").read_text())
    assert set(report["per_model"]) == {"m0", "m1", "m2"}
    assert main(["fuse", str(paths[0]), "--out", str(out)]) == 2
    assert "at least 2" in capsys.readouterr().err


def test_fuse_cli_single_structure_gives_binary_staple(tmp_path):
    paths = [_write(tmp_path / f"s{i}.nii.gz", (5, (20, 24, 28 + d), 9.0), (1, (20, 24, 8), 4.0))
             for i, d in enumerate((0, 1, 2))]
    out = tmp_path / "liver.nii.gz"
    assert main(["fuse", *map(str, paths), "--structure", "liver", "--vocabulary", "total", "--method", "staple",
                 "--out", str(out)]) == 0
    fused = read_image(out)
    assert set(np.unique(fused.array)) == {0, 1}
    report = json.loads(out.with_name("liver.nii.gz.json").read_text())
    assert report["labels"] == {"1": "liver"}
    assert all(isinstance(s["staple_sensitivity"], float) for s in report["per_model"].values())


def test_unnamed_labels_ask_for_a_vocabulary(tmp_path, capsys):
    ref = _write(tmp_path / "ref.nii.gz", (5, (20, 24, 28), 10.0), (1, (20, 24, 8), 4.0))
    assert main(["errormap", "--ref", str(ref), "--pred", str(ref), "--structure", "liver",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "carry no names" in err and "--vocabulary" in err


def test_structure_missing_from_one_map_is_reported_as_empty_not_unknown(tmp_path, capsys):
    """A model that missed the liver: errormap says the liver has no voxel there; fuse counts it as empty."""
    ref = _write(tmp_path / "ref.nii.gz", (5, (20, 24, 28), 10.0), (1, (20, 24, 8), 4.0))
    missed = _write(tmp_path / "missed.nii.gz", (1, (20, 24, 8), 4.0))  # spleen only
    out = tmp_path / "o"
    assert main(["errormap", "--ref", str(ref), "--pred", str(missed), "--structure", "liver",
                 "--vocabulary", "total", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'liver' has no voxel in prediction" in err and "missed.nii.gz" in err and "unknown" not in err
    assert not out.exists()
    fused = tmp_path / "f.nii.gz"
    assert main(["fuse", str(ref), str(ref), str(missed), "--structure", "liver", "--vocabulary", "total",
                 "--method", "majority", "--out", str(fused)]) == 0
    np.testing.assert_array_equal(read_image(fused).array > 0, read_image(ref).array == 5)


def test_errormap_cohort_leaves_out_a_case_whose_prediction_missed_the_structure(tmp_path, capsys):
    cohort = _cohort(tmp_path, 3)
    _write(tmp_path / "p1.nii.gz", (1, (20, 24, 8), 4.0))  # case c1: the model found no liver
    out = tmp_path / "o"
    assert main(["errormap-cohort", str(cohort), "--structure", "liver", "--vocabulary", "total",
                 "--out", str(out)]) == 0
    assert json.loads((out / "cohort_summary.json").read_text())["n_cases"] == 2
    assert "skipped: c1 (structure 'liver' has no voxel in prediction" in capsys.readouterr().out


def test_fuse_cli_takes_one_vocabulary_per_model(tmp_path, capsys):
    """Pancreas is label 7 in TotalSegmentator v2 ('total') but 10 in v1: b=total_v1 names model b's labels."""
    a = _write(tmp_path / "a.nii.gz", (7, (20, 24, 28), 9.0))
    b = _write(tmp_path / "b.nii.gz", (10, (20, 24, 28), 9.0))
    c = _write(tmp_path / "c.nii.gz", (7, (20, 24, 29), 9.0))
    out = tmp_path / "pancreas.nii.gz"
    assert main(["fuse", str(a), str(b), str(c), "--structure", "pancreas", "--vocabulary", "total",
                 "--vocabulary", "b=total_v1", "--method", "staple", "--out", str(out)]) == 0
    report = json.loads(out.with_name("pancreas.nii.gz.json").read_text())
    assert report["per_model"]["b"]["dice_vs_consensus"] > 0.9
    assert main(["fuse", str(a), str(b), "--vocabulary", "x=total_v1", "--out", str(out)]) == 2
    assert "unknown model 'x'" in capsys.readouterr().err
