"""The safety scan of checkpoints that nnU-Net (TotalSegmentator, MOOSE) unpickles with weights_only=False."""

from __future__ import annotations

import builtins

import pytest
import synthetic
from fake_nnunet import write_model_folder, zip_folder
from tiny_models import ct_volume

from organsegbench.models import registry
from organsegbench.models import weights as W
from organsegbench.models.pickle_scan import UnsafeCheckpointError, check_model_folder, unsafe_globals

torch = pytest.importorskip("torch")
pytest.importorskip("dynamic_network_architectures")


class _OpensAFile:
    """Unpickling this calls ``open(marker, "w")``: proof of execution is the marker file appearing."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


@pytest.fixture(autouse=True)
def _env(model_env, monkeypatch):
    monkeypatch.delenv("ORGANSEGBENCH_TRUST_CHECKPOINTS", raising=False)


def test_a_real_style_nnunet_checkpoint_passes(tmp_path):
    ds = write_model_folder(tmp_path, "Dataset001_x", "nnUNetTrainer", {1: "liver"}, 3.0)
    pth = next(ds.rglob("checkpoint_final.pth"))
    from torch.serialization import get_unsafe_globals_in_checkpoint

    assert any("numpy" in g for g in get_unsafe_globals_in_checkpoint(str(pth)))  # the allowlist is needed
    assert unsafe_globals(pth) == []
    rec = check_model_folder(ds)
    assert rec["checked"] == [str(pth.relative_to(ds))] and rec["flagged"] == {}


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "executed"
    ds = write_model_folder(tmp_path, "Dataset001_x", "nnUNetTrainer", {1: "liver"}, 3.0,
                            payload=_OpensAFile(str(marker)))
    with pytest.raises(UnsafeCheckpointError, match=r"io\.open") as err:
        check_model_folder(ds)
    assert "ORGANSEGBENCH_TRUST_CHECKPOINTS" in err.value.hint
    assert not marker.exists()
    rec = check_model_folder(ds, trust=True)  # the user's explicit choice is recorded
    assert rec["trusted_by_user"] is True and list(rec["flagged"].values()) == [["io.open"]]
    assert not marker.exists()


def test_a_legacy_or_corrupt_checkpoint_cannot_be_checked(tmp_path, monkeypatch):
    (tmp_path / "m" / "fold_0").mkdir(parents=True)
    legacy = tmp_path / "m" / "fold_0" / "checkpoint_final.pth"
    torch.save({"w": torch.zeros(1)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError, match="without unpickling"):
        check_model_folder(tmp_path / "m")
    monkeypatch.setenv("ORGANSEGBENCH_TRUST_CHECKPOINTS", "1")
    assert "unscannable" in check_model_folder(tmp_path / "m")["flagged"]["fold_0/checkpoint_final.pth"][0]


@pytest.mark.parametrize("model", ["totalsegmentator", "moose"])
def test_adapters_refuse_a_tampered_task_folder_before_nnunet_loads_it(tmp_path, model):
    pytest.importorskip("totalsegmentator" if model == "totalsegmentator" else "moosez")
    marker = tmp_path / "executed"
    if model == "totalsegmentator":
        from totalsegmentator.map_to_binary import class_map

        name, ds_name, labels = "totalseg_v2_total_3mm", "Dataset297_TotalSegmentator_total_3mm_1559subj", \
            class_map["total"]
        kwargs = {"fast": True}
    else:
        import moosez.models as mm

        name, kwargs = "moose_clin_ct_organs", {}
        meta = mm.MODEL_METADATA[W.entry(name).extra.get("moose_model", name)]
        ds_name, labels = meta[mm.KEY_FOLDER_NAME], {1: "liver"}
    ds = write_model_folder(tmp_path / "build", ds_name, "nnUNetTrainer", labels, 3.0,
                            payload=_OpensAFile(str(marker)))
    W.import_weights(name, zip_folder(ds, tmp_path / "w.zip"), allow_unverified=True)
    img = synthetic.image(ct_volume(shape=(12, 24, 24)), spacing_xyz=(3.0, 3.0, 3.0))
    out = tmp_path / "seg.nii.gz"
    with pytest.raises(UnsafeCheckpointError, match=r"io\.open"):
        registry.create(model, device="cpu", **kwargs).segment(img, out=out)
    assert not marker.exists() and not out.exists()
