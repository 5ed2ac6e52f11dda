"""Error maps and fusion on the seed's real multi-model aorta slices (skipped when ../shared/data is absent).

Layout (Probabilistic_UNet/Data_Sample): TrainDataset/AO/<case>/<MODEL>_label_<case>.png for MODEL in SAM, SAM2,
MedSAM, MedAM2 (MedSAM2), SAT, TotalSeg plus image_<case>.png; TestDataset/AO/<case>/label_<case>.png (manual);
Output/AO/01230522V004/<case>.png (the seed's student predictions for the test slices). 8-bit, 0/255.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from organsegbench.cli import main
from organsegbench.surfaces.errormap import errormap_from_labelmaps
from organsegbench.surfaces.inputs import read_picture_mask

MODELS = ("SAM", "SAM2", "MedSAM", "MedAM2", "SAT", "TotalSeg")


def _train_cases(root):
    return sorted(p for p in (root / "Data_Sample" / "TrainDataset" / "AO").iterdir() if p.is_dir())


def _test_pairs(root):
    pairs = []
    for case in sorted((root / "Data_Sample" / "TestDataset" / "AO").iterdir()):
        pred = root / "Output" / "AO" / case.name.rsplit("_", 1)[0] / f"{case.name}.png"
        if pred.is_file():
            pairs.append((case.name, case / f"label_{case.name}.png", pred))
    return pairs


def test_error_maps_of_student_predictions_match_the_hausdorff_distance(aorta):
    pairs = _test_pairs(aorta)
    assert len(pairs) == 5
    for case, ref_path, pred_path in pairs:
        ref, _ = read_picture_mask(ref_path)
        pred, _ = read_picture_mask(pred_path)
        em = errormap_from_labelmaps(ref, pred, structure="aorta", case=case)
        assert em.metadata["planar"] and em.prediction.metadata["planar"]
        assert np.isfinite(em.pred_to_ref).all() and np.isfinite(em.ref_to_pred).all()
        # independent check: Hausdorff distance between the pixel sets (ITK) vs the largest contour distance;
        # contours sit half a pixel outside the outermost pixel centres, so they agree within one pixel
        hd = sitk.HausdorffDistanceImageFilter()
        hd.Execute(sitk.GetImageFromArray(ref.array[0]), sitk.GetImageFromArray(pred.array[0]))
        ours = max(np.abs(em.pred_to_ref).max(), np.abs(em.ref_to_pred).max())
        assert ours == pytest.approx(hd.GetHausdorffDistance(), abs=1.0), case
        # sign: where the prediction has pixels outside the reference, some errors are positive, and vice versa
        over = np.any(pred.array & ~ref.array.astype(bool))
        under = np.any(ref.array.astype(bool) & ~pred.array.astype(bool))
        assert (em.pred_to_ref.max() > 0.4) == bool(over), case
        assert (em.ref_to_pred.min() < -0.4) == bool(under), case


def test_errormap_each_model_against_the_staple_consensus(aorta, tmp_path):
    case = _train_cases(aorta)[0]
    files = [case / f"{m}_label_{case.name}.png" for m in MODELS]
    fused = tmp_path / "staple.png"
    assert main(["fuse", *map(str, files), "--method", "staple", "--out", str(fused)]) == 0
    report = json.loads(fused.with_name("staple.png.json").read_text())
    assert set(report["per_model"]) == set(MODELS)  # shared suffix stripped from the file names
    for model, path in zip(MODELS, files, strict=True):
        out = tmp_path / model
        assert main(["errormap", "--ref", str(fused), "--pred", str(path), "--structure", "aorta",
                     "--out", str(out), "--case", case.name]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["rendering_backend"] == "matplotlib-2d"
        assert (out / "errormap_prediction.png").stat().st_size > 10_000


def test_errormap_cohort_over_the_test_slices(aorta, tmp_path):
    rows = ["id,reference,pred:student"]
    rows += [f"{case},{ref},{pred}" for case, ref, pred in _test_pairs(aorta)]
    cohort = tmp_path / "aorta.csv"
    cohort.write_text("\n".join(rows) + "\n")
    out = tmp_path / "cohort"
    assert main(["errormap-cohort", str(cohort), "--structure", "aorta", "--out", str(out)]) == 0
    summary = json.loads((out / "cohort_summary.json").read_text())
    assert summary["n_cases"] == 5
    assert all(a["mean_distance_mm"] < 3.0 for a in summary["alignments"].values())
