"""TotalSegmentator end-to-end on CPU through its own Python API and loader, with a fake nnU-Net task folder
(plans.json, dataset.json, checkpoint_final.pth of a tiny random PlainConvUNet) imported into our cache."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import synthetic
from fake_nnunet import write_model_folder, zip_folder
from tiny_models import ct_volume

from organsegbench.errors import OrganSegBenchError
from organsegbench.models import registry
from organsegbench.models import weights as W

torch = pytest.importorskip("torch")
pytest.importorskip("totalsegmentator")
pytestmark = pytest.mark.models


@pytest.fixture(autouse=True)
def _env(model_env, monkeypatch):
    for k in ("TOTALSEG_HOME_DIR", "TOTALSEG_WEIGHTS_PATH", "ORGANSEGBENCH_TOTALSEG_USAGE_STATS"):
        monkeypatch.delenv(k, raising=False)


@pytest.fixture
def fast_weights(tmp_path):
    from totalsegmentator.map_to_binary import class_map

    ds = write_model_folder(tmp_path / "build", "Dataset297_TotalSegmentator_total_3mm_1559subj",
                            "nnUNetTrainer_4000epochs_NoMirroring", class_map["total"], spacing=3.0)
    z = zip_folder(ds, tmp_path / "Dataset297.zip")
    W.import_weights("totalseg_v2_total_3mm", z, allow_unverified=True)
    return z


@pytest.mark.slow
def test_totalseg_fast_runs_through_its_own_api(fast_weights, tmp_path):
    img = synthetic.image(ct_volume(shape=(20, 40, 40)), spacing_xyz=(2.0, 2.0, 3.0), origin=(-40, -40, 10))
    seg = registry.create("totalsegmentator", device="cpu", fast=True)
    out = tmp_path / "total.nii.gz"
    res = seg.segment(img, out=out)
    assert res.labelmap.shape == img.shape and res.labelmap.spacing == img.spacing
    assert res.labelmap.origin == img.origin
    assert res.labels[5] == "liver" and len(res.labels) == 117
    assert res.labelmap.array.max() <= 117 and res.labelmap.array.any()
    prov = res.provenance
    assert prov["notes"]["mode"] == "fast" and prov["usage_statistics_sent"] is False
    assert prov["task_weights"]["totalseg_v2_total_3mm"]["verified"] is False
    scan = prov["notes"]["checkpoint_scan"]["totalseg_v2_total_3mm"]  # nnU-Net-style numpy logs pass the scan
    assert scan["checked"] and scan["flagged"] == {}
    home = os.environ["TOTALSEG_HOME_DIR"]
    cfg = json.loads((tmp_path / "cache" / "weights" / "totalsegmentator_home" / "config.json").read_text())
    assert cfg["send_usage_stats"] is False and home.endswith("totalsegmentator_home")
    assert out.is_file()


@pytest.mark.slow
def test_totalseg_roi_subset_and_bad_names(fast_weights, tmp_path):
    from totalsegmentator.map_to_binary import class_map

    ds = write_model_folder(tmp_path / "build", "Dataset298_TotalSegmentator_total_6mm_1559subj",
                            "nnUNetTrainer_4000epochs_NoMirroring", class_map["total"], spacing=6.0, seed=1)
    W.import_weights("totalseg_v2_total_6mm", zip_folder(ds, tmp_path / "Dataset298.zip"), allow_unverified=True)
    img = synthetic.image(ct_volume(shape=(20, 40, 40)), spacing_xyz=(2.0, 2.0, 3.0))
    seg = registry.create("totalsegmentator", device="cpu", fast=True, roi_subset=["liver", "spleen"])
    res = seg.segment(img)
    assert set(res.labels.values()) == {"liver", "spleen"}
    assert set(np.unique(res.labelmap.array)) <= {0, 1, 5}
    from organsegbench.prompts import PromptSet

    by_text = registry.create("totalsegmentator", device="cpu", fast=True).segment(img, PromptSet(text=["Liver"]))
    assert by_text.labels == {5: "liver"} and set(np.unique(by_text.labelmap.array)) <= {0, 5}
    bad = registry.create("totalsegmentator", device="cpu", fast=True, roi_subset=["livr"])
    with pytest.raises(OrganSegBenchError, match="livr") as err:
        bad.segment(img)
    assert "liver" in err.value.hint


def test_totalseg_missing_weights_say_what_to_get():
    img = synthetic.image(ct_volume(shape=(4, 16, 16)))
    with pytest.raises(OrganSegBenchError, match="totalseg_v2_organs") as err:
        registry.create("totalsegmentator", device="cpu").segment(img)
    assert "weights download totalseg_v2_organs --allow-unverified" in err.value.hint
    with pytest.raises(OrganSegBenchError, match="does not take box"):
        from organsegbench.prompts import Box2D, PromptSet

        registry.create("totalsegmentator", device="cpu").segment(img, PromptSet(boxes=[Box2D(0, 1, 1, 3, 3)]))


@pytest.mark.slow
@pytest.mark.skipif(not (os.environ.get("ORGANSEGBENCH_SLOW_MODELS") or os.environ.get("CI")),
                    reason="~75 s on 1 CPU core (five nnU-Net runs); runs in CI, or set ORGANSEGBENCH_SLOW_MODELS=1")
def test_totalseg_normal_mode_runs_the_five_part_models(tmp_path):
    from totalsegmentator.map_to_binary import class_map_5_parts

    parts = [("totalseg_v2_organs", "Dataset291_TotalSegmentator_part1_organs_1559subj", "class_map_part_organs"),
             ("totalseg_v2_vertebrae", "Dataset292_TotalSegmentator_part2_vertebrae_1532subj",
              "class_map_part_vertebrae"),
             ("totalseg_v2_cardiac", "Dataset293_TotalSegmentator_part3_cardiac_1559subj", "class_map_part_cardiac"),
             ("totalseg_v2_muscles", "Dataset294_TotalSegmentator_part4_muscles_1559subj", "class_map_part_muscles"),
             ("totalseg_v2_ribs", "Dataset295_TotalSegmentator_part5_ribs_1559subj", "class_map_part_ribs")]
    for i, (name, folder, cmap) in enumerate(parts):
        ds = write_model_folder(tmp_path / "build", folder, "nnUNetTrainerNoMirroring", class_map_5_parts[cmap],
                                spacing=1.5, seed=i)
        W.import_weights(name, zip_folder(ds, tmp_path / f"{folder}.zip"), allow_unverified=True)
    img = synthetic.image(ct_volume(shape=(12, 24, 24)), spacing_xyz=(1.5, 1.5, 1.5))
    res = registry.create("totalsegmentator", device="cpu").segment(img)
    assert res.labelmap.shape == img.shape and len(res.labels) == 117
    assert res.provenance["notes"]["mode"] == "normal"
    assert set(res.provenance["task_weights"]) == {p[0] for p in parts}


def test_out_of_memory_goes_through_the_shared_fallback(fast_weights, monkeypatch):
    """TotalSegmentator's OOM handling is the base class's: on the CPU (nothing left to fall back to) it is a
    clear error naming the model and the remedies, never a traceback or an empty mask."""
    from organsegbench.models.totalseg import TotalSegmentatorSegmenter

    calls = []

    def oom(self, image, ctx):
        calls.append(ctx.device)
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(TotalSegmentatorSegmenter, "run_totalseg", oom)
    img = synthetic.image(ct_volume(shape=(8, 16, 16)))
    seg = registry.create("totalsegmentator", device="cpu", fast=True)
    with pytest.raises(OrganSegBenchError, match="ran out of memory on cpu") as err:
        seg.segment(img)
    assert "--device cpu" in err.value.hint or "crop" in err.value.hint
    assert calls == ["cpu"]
