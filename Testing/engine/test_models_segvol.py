"""SegVol as a user-installed component: a stand-in SegVol folder (config.json with ``auto_map``, remote code
``model_segvol.py``, safetensors weights, tokenizer files) is loaded through transformers' real
``trust_remote_code`` path, and the zoom-out-zoom-in recipe must put the result at the right physical place.

The stand-in network has SegVol's call (``model.model(image, text=, boxes=, points=)`` -> logits of the image's
size, tokenizer attached as ``model.model.text_encoder.tokenizer``) but a trivial rule written for the test: a box
gives +10 inside it, the text "liver" gives +10 on bright voxels (a 1×1×1 convolution whose weights come from the
checkpoint must be identity, so unloaded weights would break it). It is not SegVol's network; real weights were not
available here. The stand-in uses a word-level BERT tokenizer where SegVol ships a CLIP one (both through
``AutoTokenizer``)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import synthetic
from tiny_models import ct_volume

from organsegbench.errors import DependencyError, OrganSegBenchError, UnknownNameError
from organsegbench.models import registry
from organsegbench.models.segvol import segvol_term
from organsegbench.prompts import Box2D, Box3D, PromptSet

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("monai")
pytestmark = pytest.mark.models

SPATIAL = [8, 16, 16]

STANDIN = textwrap.dedent('''
    import os
    import torch
    import torch.nn as nn
    from transformers import PretrainedConfig, PreTrainedModel

    if os.environ.get("OSB_SEGVOL_MARKER"):
        open(os.environ["OSB_SEGVOL_MARKER"], "a").write("imported\\n")


    class SegVolConfig(PretrainedConfig):
        model_type = "segvol"

        def __init__(self, test_mode=True, **kwargs):
            self.spatial_size = [32, 256, 256]
            self.patch_size = [4, 16, 16]
            self.test_mode = test_mode
            super().__init__(**kwargs)


    class TextEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = None

        def forward(self, text, device):
            tok = self.tokenizer([f"A computerized tomography of a {t}." for t in text], padding=True,
                                 return_tensors="pt")
            words = self.tokenizer.batch_decode(tok["input_ids"], skip_special_tokens=True)
            return [w.split(" of a ", 1)[1].rstrip(".").strip() for w in words]


    class StandInSegVol(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.text_encoder = TextEncoder()
            self.gain = nn.Conv3d(1, 1, 1)
            self.calls = []

        def forward(self, image, text=None, boxes=None, points=None, **kwargs):
            call = {"shape": tuple(image.shape[2:]), "text": text,
                    "boxes": None if boxes is None else boxes.reshape(-1).tolist()}
            self.calls.append(call)
            feat = self.gain(image)
            logits = torch.full_like(feat, 10.0)
            if text is not None:
                call["decoded"] = self.text_encoder(text, image.device)
                logits = torch.where(feat > 0.6, 10.0, -10.0) if call["decoded"][0] == "liver" else -logits
            if boxes is not None:
                b = [int(v) for v in boxes.reshape(-1, 6)[0].tolist()]
                inside = torch.zeros_like(feat, dtype=torch.bool)
                if b[0] >= 0:
                    inside[..., b[0]:b[3] + 1, b[1]:b[4] + 1, b[2]:b[5] + 1] = True
                logits = torch.where(inside, logits, torch.full_like(logits, -10.0))
            return logits


    class SegVolModel(PreTrainedModel):
        config_class = SegVolConfig

        def __init__(self, config):
            super().__init__(config)
            self.model = StandInSegVol(config)
    ''')


@pytest.fixture(scope="module")
def segvol_dir(tmp_path_factory):
    """Write the stand-in SegVol folder: config, remote code, tokenizer, safetensors weights (gain = identity)."""
    from safetensors.torch import save_file
    from transformers import BertTokenizer

    d = tmp_path_factory.mktemp("segvol") / "SegVolStandIn"
    d.mkdir()
    (d / "model_segvol.py").write_text(STANDIN)
    (d / "config.json").write_text(json.dumps({
        "architectures": ["SegVolModel"], "model_type": "segvol", "test_mode": False,
        "auto_map": {"AutoConfig": "model_segvol.SegVolConfig", "AutoModel": "model_segvol.SegVolModel"},
        "spatial_size": SPATIAL, "patch_size": [4, 16, 16]}))
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "computerized", "tomography", "of", "liver",
             "left", "kidney", "spleen", "."]
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizer(vocab_file=str(d / "vocab.txt")).save_pretrained(str(d))
    save_file({"model.gain.weight": torch.ones(1, 1, 1, 1, 1), "model.gain.bias": torch.zeros(1)},
              str(d / "model.safetensors"), metadata={"format": "pt"})
    return d


@pytest.fixture
def ct():
    """Anisotropic, axis-flipped CT (z, y, x) = (20, 40, 48), spacing 0.7 × 0.9 × 3 mm (x, y, z)."""
    vol = ct_volume(shape=(20, 40, 48), seed=3)
    img = synthetic.image(vol, spacing_xyz=(0.7, 0.9, 3.0), origin=(120.0, -40.0, 300.0))
    img.direction = np.diag([-1.0, 1.0, -1.0])
    return img


def _physical_centroid(img, mask):
    idx = np.argwhere(mask).mean(0)  # (k, j, i)
    return (img.index_to_physical_matrix() @ np.array([idx[2], idx[1], idx[0], 1.0]))[:3]


def _dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_box_prompt_comes_back_at_the_right_physical_place(segvol_dir, ct):
    seg = registry.create("segvol", weights=segvol_dir, device="cpu", trust_remote_code=True)
    box = Box3D(6, 13, 12.0, 25.0, 9.0, 30.0, label=1, name="liver")
    res = seg.segment(ct, PromptSet(boxes3d=[box]))
    truth = np.zeros(ct.shape, bool)
    truth[6:14, 12:26, 9:31] = True
    got = res.labelmap.array == 1
    assert res.labels == {1: "liver"} and res.labelmap.shape == ct.shape
    assert np.allclose(res.labelmap.direction, ct.direction) and res.labelmap.origin == ct.origin
    assert _dice(got, truth) > 0.75, _dice(got, truth)
    # every face within one voxel of the box (the zoom-out grid is 2.5 × 2.3 × 2.4 voxels coarser here)
    bounds = [(int(a.min()), int(a.max())) for a in np.nonzero(got)]
    for (g0, g1), (t0, t1) in zip(bounds, [(6, 13), (12, 25), (9, 30)], strict=True):
        assert abs(g0 - t0) <= 1 and abs(g1 - t1) <= 1, bounds
    err_mm = np.abs(_physical_centroid(ct, got) - _physical_centroid(ct, truth))
    assert np.all(err_mm <= np.array([0.7, 0.9, 3.0])), err_mm  # centroid within one voxel (x, y, z in mm)
    calls = seg.net.calls
    assert calls[0]["shape"] == tuple(SPATIAL)  # zoom-out on the model grid ...
    assert len(calls) > 2 and all(c["shape"] == tuple(SPATIAL) for c in calls[1:])  # ... then zoom-in windows
    note = res.provenance["notes"]["segvol"]
    assert note["targets"][0]["zoom_in"] is True and note["targets"][0]["segvol_text"] is None
    lo, hi = note["foreground_crop_zyx"]
    zb = note["targets"][0]["zoom_out_box"]  # the box on the 8×16×16 zoom-out grid of the foreground crop
    for a, (k0, k1) in enumerate([(6, 13), (12, 25), (9, 30)]):
        scale = SPATIAL[a] / (hi[a] - lo[a])
        assert abs(zb[a] - (k0 - lo[a]) * scale) <= 1 and abs(zb[a + 3] - (k1 + 1 - lo[a]) * scale) <= 1.5
    assert res.provenance["trust_remote_code"] is True
    assert set(res.provenance["segvol_files_sha256"]) >= {"model.safetensors", "model_segvol.py", "config.json"}


def test_text_prompts_are_mapped_to_segvol_words(segvol_dir, ct):
    seg = registry.create("segvol", weights=str(segvol_dir), device="cpu", trust_remote_code=True)
    res = seg.segment(ct, PromptSet(text=["Liver", "left kidney"]))
    assert res.labels == {1: "liver", 2: "kidney_left"}
    truth = ct.array > 120  # the stand-in's "liver" is the bright blob
    got = res.labelmap.array == 1
    assert _dice(got, truth) > 0.9, _dice(got, truth)
    assert not (res.labelmap.array == 2).any()
    decoded = {tuple(c["decoded"]) for c in seg.net.calls if c.get("decoded")}
    assert decoded == {("liver",), ("left kidney",)}  # through the folder's tokenizer
    assert [t["segvol_text"] for t in res.provenance["notes"]["segvol"]["targets"]] == ["liver", "left kidney"]


def test_text_and_box_of_one_label_are_combined(segvol_dir, ct):
    seg = registry.create("segvol", weights=segvol_dir, device="cpu", trust_remote_code=True)
    half = Box2D(10, 0, 0, 20, 39, label=1)  # x 0..20 on slice 10 -> a one-slice 3D box
    res = seg.segment(ct, PromptSet(text=["liver"], boxes=[half]))
    got = res.labelmap.array == 1
    assert got.any() and not got[:, :, 26:].any()  # nothing beyond the box's right edge (+ zoom-out rounding)
    assert all(c["text"] == ["liver"] and c["boxes"] is not None for c in seg.net.calls)


def test_segvol_terms():
    assert segvol_term("kidney_left") == "left kidney"
    assert segvol_term("adrenal_gland_right") == "right adrenal gland"
    assert segvol_term("inferior_vena_cava") == "inferior vena cava"
    assert segvol_term("liver") == "liver"


def test_remote_code_is_not_run_without_opt_in(segvol_dir, ct, tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    monkeypatch.setenv("OSB_SEGVOL_MARKER", str(marker))
    monkeypatch.delenv("ORGANSEGBENCH_SEGVOL_TRUST_REMOTE_CODE", raising=False)
    with pytest.raises(OrganSegBenchError, match="trust_remote_code") as err:
        registry.create("segvol", weights=segvol_dir, device="cpu").segment(ct, PromptSet(text=["liver"]))
    assert "ORGANSEGBENCH_SEGVOL_TRUST_REMOTE_CODE=1" in err.value.hint
    assert not marker.exists()
    monkeypatch.setenv("ORGANSEGBENCH_SEGVOL_TRUST_REMOTE_CODE", "1")  # the environment opt-in works too
    res = registry.create("segvol", weights=segvol_dir, device="cpu").segment(ct, PromptSet(text=["liver"]))
    assert (res.labelmap.array == 1).any()


def test_missing_or_incomplete_folder_says_how_to_get_segvol(tmp_path, ct, monkeypatch, isolated_cache):
    monkeypatch.delenv("ORGANSEGBENCH_SEGVOL_DIR", raising=False)
    with pytest.raises(DependencyError, match="SegVol is not installed") as err:
        registry.create("segvol", device="cpu", trust_remote_code=True).segment(ct, PromptSet(text=["liver"]))
    assert "huggingface-cli download BAAI/SegVol" in err.value.hint
    with pytest.raises(OrganSegBenchError, match="does not exist"):
        registry.create("segvol", weights=tmp_path / "nope", trust_remote_code=True).segment(
            ct, PromptSet(text=["liver"]))
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    with pytest.raises(OrganSegBenchError, match="lacks model.safetensors or pytorch_model.bin"):
        registry.create("segvol", weights=partial, trust_remote_code=True).segment(ct, PromptSet(text=["liver"]))


def test_bad_prompts(segvol_dir, ct):
    seg = registry.create("segvol", weights=segvol_dir, device="cpu", trust_remote_code=True)
    with pytest.raises(UnknownNameError) as err:
        seg.segment(ct, PromptSet(text=["livr"]))
    assert "liver" in str(err.value.hint)
    with pytest.raises(OrganSegBenchError, match="empty text prompt"):
        seg.segment(ct, PromptSet(text=[" "]))
    with pytest.raises(OrganSegBenchError, match="needs a prompt"):
        seg.segment(ct, PromptSet())
    with pytest.raises(OrganSegBenchError, match="outside the image"):
        seg.segment(ct, PromptSet(boxes3d=[Box3D(30, 40, 1, 5, 1, 5)]))


def test_preprocessing_follows_segvols_processor(ct):
    import monai.transforms as T

    from organsegbench.models.segvol import foreground_bounds, foreground_norm, minmax

    # ForegroundNorm by hand: foreground = voxels above the mean (40) -> {100, 200}, mean 120, std 40, clip [100, 200]
    a = np.array([0.0] * 50 + [100.0] * 40 + [200.0] * 10).reshape(1, 10, 10)
    np.testing.assert_allclose(np.unique(foreground_norm(a)), [-0.5, 2.0], atol=1e-5)
    # the foreground crop is MONAI's CropForegroundd (voxels > 0 after min-max), as in SegVolProcessor
    x = minmax(foreground_norm(ct.array))
    lo, hi = foreground_bounds(x)
    d = T.CropForegroundd(keys=["image"], source_key="image")({"image": x[None]})
    assert [int(v) for v in d["foreground_start_coord"]] == list(lo)
    assert [int(v) for v in d["foreground_end_coord"]] == list(hi)
    assert 0 < lo[1] and hi[1] < ct.shape[1]  # the air around the body is cropped away


def test_cli_needs_the_explicit_opt_in_flag(segvol_dir, ct, tmp_path, capsys, monkeypatch):
    from organsegbench.cli import main
    from organsegbench.io import write_image

    monkeypatch.delenv("ORGANSEGBENCH_SEGVOL_TRUST_REMOTE_CODE", raising=False)
    image = write_image(ct, tmp_path / "ct.nii.gz")
    args = ["segment", str(image), "--model", "segvol", "--weights", str(segvol_dir), "--device", "cpu",
            "--box", "6:13,9,12,30,25", "--out", str(tmp_path / "seg.nii.gz")]
    assert main(args) == 2
    assert "trust" in capsys.readouterr().err.lower()
    assert not (tmp_path / "seg.nii.gz").exists()
    assert main([*args, "--trust-remote-code"]) == 0
    assert (tmp_path / "seg.nii.gz").exists()
