"""`organsegbench segment-cohort`: one model over a cohort with prompts from the references, then `evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import synthetic
import yaml

from organsegbench.cli import main
from organsegbench.cohort import load_cohort
from organsegbench.io import write_image

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.models, pytest.mark.usefixtures("model_env")]


@pytest.fixture
def cohort(tmp_path):
    """c1: liver (5) + spleen (1); c2: liver only; c3: no image; c4: reference on a smaller grid (resampled onto the
    image's); c5: reference 500 mm away from its image (refused)."""
    from tiny_models import ct_volume

    cases = []
    for cid, spleen, grid, with_image in (("c1", True, "same", True), ("c2", False, "same", True),
                                           ("c3", True, "same", False), ("c4", True, "smaller", True),
                                           ("c5", True, "far", True)):
        lab = np.zeros((4, 40, 50), np.uint8)
        lab[1:3, 10:20, 12:30] = 5
        if spleen:
            lab[2, 28:34, 30:40] = 1
        ref = tmp_path / "ref" / f"{cid}.nii.gz"
        ref.parent.mkdir(exist_ok=True)
        arr = lab[:, :, :40] if grid == "smaller" else lab
        write_image(synthetic.image(arr, spacing_xyz=(0.8, 0.8, 2.5),
                                    origin=(500.0, 0.0, 0.0) if grid == "far" else (0.0, 0.0, 0.0)), ref)
        entry = {"id": cid, "reference": f"ref/{cid}.nii.gz", "attributes": {"sex": "F" if cid < "c3" else "M"}}
        if with_image:
            img = tmp_path / "img" / f"{cid}.nii.gz"
            img.parent.mkdir(exist_ok=True)
            write_image(synthetic.image(ct_volume(shape=(4, 40, 50), seed=int(cid[1])), spacing_xyz=(0.8, 0.8, 2.5)),
                        img)
            entry["image"] = f"img/{cid}.nii.gz"
        cases.append(entry)
    path = tmp_path / "cohort.yaml"
    path.write_text(yaml.safe_dump({"vocabularies": {"reference": "total"}, "cases": cases}))
    return path


def _run(cohort, tmp_path, *extra):
    from tiny_models import save_tiny_sam

    weights = tmp_path / "tiny.pth"
    if not weights.exists():
        save_tiny_sam(weights)
    return main(["segment-cohort", str(cohort), "--model", "medsam", "--weights", str(weights), "--device", "cpu",
                 "--structures", "liver,spleen", "--no-progress", "--out", str(tmp_path / "run"), *extra])


def test_cohort_run_writes_predictions_statuses_and_a_cohort_for_evaluate(cohort, tmp_path, capsys):
    assert _run(cohort, tmp_path, "--margin-mm", "1.6") == 0
    out = capsys.readouterr().out
    status = {r["case"]: r for r in __import__("csv").DictReader((tmp_path / "run" / "segment_runs.csv").open())}
    assert {k: v["status"] for k, v in status.items()} == {"c1": "done", "c2": "done", "c3": "skipped",
                                                           "c4": "done", "c5": "failed"}
    assert "lie outside the image" in status["c5"]["reason"]
    prov4 = json.loads((tmp_path / "run" / "medsam" / "c4.nii.gz.provenance.json").read_text())
    assert prov4["prompts"]["protocol"]["reference"]["resampled_to_image_grid"] is True
    assert status["c2"]["missing_structures"] == "spleen" and "not in the reference" in out
    assert "no image" in status["c3"]["reason"]
    pred = tmp_path / "run" / "medsam" / "c1.nii.gz"
    prov = json.loads(pred.with_name("c1.nii.gz.provenance.json").read_text())
    per = prov["prompts"]["protocol"]["per_structure"]
    assert set(per) == {"liver", "spleen"} and per["liver"]["label"] == 5 and per["liver"]["margin_mm"] == 1.6
    assert prov["labels"] == {"5": "liver", "1": "spleen"}  # the reference's label values are kept

    written = load_cohort(tmp_path / "run" / "cohort.yaml")
    assert written.models == ["medsam"]
    assert {c.id: c.predictions["medsam"] is not None for c in written.cases} == {
        "c1": True, "c2": True, "c3": False, "c4": True, "c5": False}
    assert written.cases[0].attributes == {"sex": "F"}
    assert "--resample" in out  # c4's reference is on another grid than its prediction: said in the next command
    assert main(["evaluate", str(tmp_path / "run" / "cohort.yaml"), "--out", str(tmp_path / "ev"), "--resample"]) == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "ev" / "results.csv")
    dsc = table[(table["model"] == "medsam") & (table["structure"] == "liver") & (table["metric"] == "dsc")]
    assert set(dsc["case"]) == {"c1", "c2", "c4"} and dsc["value"].between(0, 1).all()
    missing = table[(table["case"] == "c3") & (table["model"] == "medsam")]
    assert (missing["status"] != "ok").all()  # no output for c3: reported, not silently dropped


def test_rerun_skips_done_cases_and_new_settings_rerun_them(cohort, tmp_path):
    assert _run(cohort, tmp_path) == 0
    assert _run(cohort, tmp_path) == 0
    rows = list(__import__("csv").DictReader((tmp_path / "run" / "segment_runs.csv").open()))
    assert [r["status"] for r in rows] == ["cached", "cached", "skipped", "cached", "failed"]
    assert _run(cohort, tmp_path, "--jitter-mm", "1", "--seed", "2") == 0
    rows = list(__import__("csv").DictReader((tmp_path / "run" / "segment_runs.csv").open()))
    assert [r["status"] for r in rows][:2] == ["done", "done"]


def test_a_box_model_without_structures_is_refused(cohort, tmp_path, capsys):
    from tiny_models import save_tiny_sam

    w = save_tiny_sam(tmp_path / "t.pth")
    assert main(["segment-cohort", str(cohort), "--model", "medsam", "--weights", str(w), "--no-progress",
                 "--out", str(tmp_path / "run")]) == 2
    assert "--structures" in capsys.readouterr().err


def test_prompt_modes_follow_the_capabilities():
    from organsegbench.cohort.segment_run import prompt_mode
    from organsegbench.models import registry

    assert prompt_mode(registry.create("sam")) == "box"
    assert prompt_mode(registry.create("totalsegmentator")) == "automatic"
    assert prompt_mode(registry.create("sat")) == "text"
