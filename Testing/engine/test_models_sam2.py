"""SAM 2.1 image and video predictors and MedSAM2, end-to-end on CPU with a tiny random SAM 2.1 built by SAM 2's
own Hydra config (overrides shrink Hiera and the memory modules; the input size stays 1024 / 512)."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic
from tiny_models import ct_volume

from organsegbench.errors import OrganSegBenchError
from organsegbench.models import registry
from organsegbench.prompts import Box2D, Box3D, PromptSet

torch = pytest.importorskip("torch")
pytest.importorskip("sam2")
pytestmark = [pytest.mark.models, pytest.mark.usefixtures("model_env")]

CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
TINY = [
    "++model.image_encoder.trunk.embed_dim=8", "++model.image_encoder.trunk.num_heads=1",
    "++model.image_encoder.trunk.stages=[1,1,2,1]", "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.neck.d_model=32", "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
    "++model.image_encoder.neck.position_encoding.num_pos_feats=32",
    "++model.memory_attention.d_model=32", "++model.memory_attention.num_layers=1",
    "++model.memory_attention.layer.d_model=32", "++model.memory_attention.layer.dim_feedforward=32",
    "++model.memory_attention.layer.self_attention.embedding_dim=32",
    "++model.memory_attention.layer.cross_attention.embedding_dim=32",
    "++model.memory_attention.layer.cross_attention.kv_in_dim=16",
    "++model.memory_encoder.out_dim=16", "++model.memory_encoder.position_encoding.num_pos_feats=16",
    "++model.memory_encoder.mask_downsampler.embed_dim=32", "++model.memory_encoder.fuser.layer.dim=32",
    "++model.memory_encoder.fuser.num_layers=1", "++model.memory_encoder.in_dim=32",
]
AT_512 = ["++model.image_size=512", "++model.memory_attention.layer.self_attention.feat_sizes=[32,32]",
          "++model.memory_attention.layer.cross_attention.feat_sizes=[32,32]"]


def save_tiny_sam2(path, overrides, seed=0):
    """Build with SAM 2's build_sam2 (random init, seeded) and save as {"model": state_dict} like the releases."""
    from sam2.build_sam import build_sam2

    torch.manual_seed(seed)
    m = build_sam2(CONFIG, None, device="cpu", hydra_overrides_extra=overrides)
    torch.save({"model": m.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def sam2_file(tmp_path_factory):
    return save_tiny_sam2(tmp_path_factory.mktemp("w") / "tiny_sam2.1.pt", TINY)


@pytest.fixture
def ct():
    return synthetic.image(ct_volume(shape=(5, 48, 64)), spacing_xyz=(0.8, 0.8, 2.5))


def windowed(arr):
    return np.round(np.clip((arr.astype(np.float32) + 160.0) / 400.0, 0, 1) * 255).astype(np.uint8)


BOXES = [Box2D(1, 14, 10, 40, 30, label=1, name="liver"), Box2D(3, 30, 12, 60, 40, label=2, name="spleen")]


@pytest.mark.parametrize("batch_size", [1, 2])
def test_sam2_image_matches_sam2_image_predictor(sam2_file, ct, batch_size):
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    seg = registry.create("sam2", weights=sam2_file, device="cpu", batch_size=batch_size, hydra_overrides=TINY)
    res = seg.segment(ct, PromptSet(boxes=BOXES))
    pred = SAM2ImagePredictor(build_sam2(CONFIG, str(sam2_file), device="cpu", hydra_overrides_extra=TINY))
    exp = np.zeros(ct.shape, dtype=np.uint8)
    for b in BOXES:
        pred.set_image(np.repeat(windowed(ct.array[b.slice])[..., None], 3, axis=2))
        m, _, _ = pred.predict(box=np.array(b.xyxy), multimask_output=False)
        exp[b.slice][m[0] > 0] = b.label
    np.testing.assert_array_equal(res.labelmap.array, exp)
    assert 0 < (exp > 0).sum() < exp[[1, 3]].size, "degenerate test: masks empty or full"
    assert res.provenance["model"] == "sam2"


def reference_video(video_file, overrides, vol_u8, image_size, boxes):
    """Official SAM 2 video predictor API, frames made here following SAM 2's JPEG loader (PIL resize, /255,
    ImageNet mean/std) without the JPEG compression; prompts on key frames, propagate forward then reverse."""
    import sam2.sam2_video_predictor as vp
    from PIL import Image
    from sam2.build_sam import build_sam2_video_predictor

    pred = build_sam2_video_predictor(CONFIG, str(video_file), device="cpu", hydra_overrides_extra=overrides)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    imgs = torch.stack([
        torch.from_numpy(np.array(Image.fromarray(np.stack([s] * 3, -1)).resize((image_size, image_size))) / 255.0)
        .permute(2, 0, 1).float() for s in vol_u8])
    imgs = (imgs - mean) / std
    orig = vp.load_video_frames
    vp.load_video_frames = lambda **kw: (imgs, vol_u8.shape[1], vol_u8.shape[2])
    try:
        with torch.inference_mode():
            state = pred.init_state(video_path="x", offload_video_to_cpu=True)
    finally:
        vp.load_video_frames = orig
    out = np.zeros(vol_u8.shape, dtype=np.uint8)
    with torch.inference_mode():
        for b in boxes:
            pred.add_new_points_or_box(state, frame_idx=b.slice, obj_id=b.label, box=np.array(b.xyxy, np.float32))
        start = min(b.slice for b in boxes)
        for reverse in (False, True):
            for f, ids, logits in pred.propagate_in_video(state, start_frame_idx=start, reverse=reverse):
                for j, lab in enumerate(ids):
                    out[f][(logits[j, 0] > 0).numpy()] = lab
    return out


def test_sam2_video_propagates_like_the_official_predictor(sam2_file, ct):
    seg = registry.create("sam2-video", weights=sam2_file, device="cpu", hydra_overrides=TINY)
    seen = []
    key = [Box2D(2, 14, 10, 40, 30, label=1, name="liver")]
    res = seg.segment(ct, PromptSet(boxes=key), progress=lambda d, t: seen.append((d, t)))
    exp = reference_video(sam2_file, TINY, windowed(ct.array), 1024, key)
    np.testing.assert_array_equal(res.labelmap.array, exp)
    assert sum(bool(exp[k].any()) for k in range(5)) >= 2, "degenerate test: nothing propagated"
    assert seen[-1] == (5, 5)  # every slice visited (forward from 2, then backward)
    assert res.provenance["notes"]["propagation"] == "forward and backward from slice 2"
    with pytest.raises(OrganSegBenchError, match="not 3D boxes"):
        seg.segment(ct, PromptSet(boxes3d=[Box3D(0, 2, 1, 9, 1, 9)]))


@pytest.mark.slow
def test_medsam2_at_512_matches_the_official_predictor(tmp_path, ct):
    f = save_tiny_sam2(tmp_path / "MedSAM2_tiny.pt", TINY + AT_512, seed=1)
    seg = registry.create("medsam2", weights=f, device="cpu", hydra_overrides=AT_512 + TINY)
    key = [Box2D(2, 14, 10, 40, 30, label=1)]
    res = seg.segment(ct, PromptSet(boxes=key))
    exp = reference_video(f, TINY + AT_512, windowed(ct.array), 512, key)
    np.testing.assert_array_equal(res.labelmap.array, exp)
    assert seg.predictor.image_size == 512


@pytest.mark.parametrize("kind", ["text file", "SAM checkpoint"])
def test_wrong_file_as_sam2_weights_is_a_clear_error(tmp_path, kind):
    """A non-checkpoint file, or a SAM (v1) state dict, given as SAM 2 weights: an InputFileError naming the file,
    not a raw torch/KeyError traceback, and never torch's advice to retry with weights_only=False."""
    from organsegbench.errors import InputFileError

    bad = tmp_path / "bad.pt"
    if kind == "text file":
        bad.write_text("id,image\nc1,a.nii.gz\n")
    else:
        torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(2, 3, 16, 16)}, bad)
    img = synthetic.image(ct_volume(shape=(2, 32, 32)))
    seg = registry.create("sam2", weights=bad, device="cpu")
    with pytest.raises(InputFileError, match="bad.pt") as err:
        seg.segment(img, PromptSet(boxes=[Box2D(0, 4, 4, 20, 20)]))
    assert "SAM 2" in err.value.message and "weights_only` set to `False" not in str(err.value)
