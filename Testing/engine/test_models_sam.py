"""SAM and MedSAM adapters end-to-end on CPU with tiny random weights saved in the real checkpoint format.

Parity: our adapter's masks equal ``segment_anything.SamPredictor``'s (SAM) and an independent re-implementation
of MedSAM's published inference function (MedSAM) for the same weights and input.
"""

from __future__ import annotations

import numpy as np
import pytest
import synthetic
from tiny_models import ct_volume, save_tiny_sam, tiny_sam

from organsegbench.errors import InputFileError, OrganSegBenchError, UnknownNameError
from organsegbench.models import registry
from organsegbench.models.embedding_cache import EmbeddingCache
from organsegbench.models.protocol import CancelToken, RunCancelled
from organsegbench.prompts import Box2D, Box3D, Point2D, PromptSet

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")
pytestmark = [pytest.mark.models, pytest.mark.usefixtures("model_env")]


@pytest.fixture(scope="module")
def sam_file(tmp_path_factory):
    return save_tiny_sam(tmp_path_factory.mktemp("w") / "tiny_sam.pth", seed=0)


@pytest.fixture
def ct():
    return synthetic.image(ct_volume(), spacing_xyz=(0.8, 0.8, 2.5))


def windowed(arr):
    """CT window level 40 / width 400 HU to uint8, written independently of the adapter."""
    return np.round(np.clip((arr.astype(np.float32) + 160.0) / 400.0, 0, 1) * 255).astype(np.uint8)


BOXES = [Box2D(1, 14, 10, 40, 30, label=1, name="liver"), Box2D(2, 5, 6, 30, 26, label=1, name="liver"),
         Box2D(2, 40, 20, 60, 44, label=2, name="spleen")]


@pytest.mark.parametrize("batch_size", [1, 3])
def test_sam_matches_sam_predictor(sam_file, ct, batch_size):
    from segment_anything import SamPredictor

    seg = registry.create("sam", weights=sam_file, device="cpu", batch_size=batch_size)
    res = seg.segment(ct, PromptSet(boxes=BOXES))
    assert res.labels == {1: "liver", 2: "spleen"}
    ref_model = tiny_sam(seed=99)
    ref_model.load_state_dict(torch.load(sam_file, weights_only=True))
    pred = SamPredictor(ref_model.eval())
    expected = np.zeros(ct.shape, dtype=np.uint8)
    for k in (1, 2):
        pred.set_image(np.repeat(windowed(ct.array[k])[..., None], 3, axis=2))
        for b in [b for b in BOXES if b.slice == k]:
            m, _, _ = pred.predict(box=np.array(b.xyxy), multimask_output=False)
            expected[k][m[0]] = b.label
    np.testing.assert_array_equal(res.labelmap.array, expected)
    fg = res.labelmap.array[1] == 1
    assert 0 < fg.sum() < fg.size, "degenerate test: mask empty or full"
    assert res.labelmap.shape == ct.shape and res.labelmap.spacing == ct.spacing


def test_sam_points_and_provenance(sam_file, ct):
    from segment_anything import SamPredictor

    from organsegbench.download import sha256_file

    seg = registry.create("sam", weights=sam_file, device="cpu")
    res = seg.segment(ct, PromptSet(points=[Point2D(2, 30, 20)], protocol={"source": "test"}))
    ref_model = tiny_sam(seed=3)
    ref_model.load_state_dict(torch.load(sam_file, weights_only=True))
    pred = SamPredictor(ref_model.eval())
    pred.set_image(np.repeat(windowed(ct.array[2])[..., None], 3, axis=2))
    masks, scores, _ = pred.predict(point_coords=np.array([[30.0, 20.0]]), point_labels=np.array([1]),
                                    multimask_output=True)
    np.testing.assert_array_equal(res.labelmap.array[2] == 1, masks[int(np.argmax(scores))])
    assert not res.labelmap.array[[0, 1, 3]].any()
    prov = res.provenance
    assert prov["model"] == "sam" and prov["weights_sha256"] == sha256_file(sam_file)
    assert prov["weights_verified"] is False
    assert prov["prompts"]["points"][0]["x"] == 30 and prov["prompt_protocol"] == {"source": "test"}
    assert "torch" in prov["versions"] and prov["notes"]["intensity"]["kind"] == "ct_window"


def test_embedding_cache_never_reencodes(sam_file, ct, tmp_path):
    cache = EmbeddingCache(max_items=8)
    seg = registry.create("sam", weights=sam_file, device="cpu", cache=cache)
    seg.segment(ct, PromptSet(boxes=[Box2D(1, 10, 10, 30, 30)]))
    assert seg.encoder_calls == 1
    seg.segment(ct, PromptSet(boxes=[Box2D(1, 0, 0, 20, 20), Box2D(1, 30, 5, 50, 40, label=2)]))
    assert seg.encoder_calls == 1  # new boxes on an encoded slice
    seg.segment(ct, PromptSet(boxes=[Box2D(1, 0, 0, 20, 20), Box2D(3, 0, 0, 20, 20)]))
    assert seg.encoder_calls == 2  # only slice 3 is new
    # another image content -> re-encoded
    other = ct.with_array(ct.array + 50)
    seg.segment(other, PromptSet(boxes=[Box2D(1, 0, 0, 20, 20)]))
    assert seg.encoder_calls == 3


def test_disk_embedding_cache_survives_a_new_instance(sam_file, ct, tmp_path):
    a = registry.create("sam", weights=sam_file, device="cpu", cache=EmbeddingCache(disk_dir=tmp_path / "emb"))
    r1 = a.segment(ct, PromptSet(boxes=BOXES))
    b = registry.create("sam", weights=sam_file, device="cpu", cache=EmbeddingCache(disk_dir=tmp_path / "emb"))
    r2 = b.segment(ct, PromptSet(boxes=BOXES))
    assert a.encoder_calls == 2 and b.encoder_calls == 0
    np.testing.assert_array_equal(r1.labelmap.array, r2.labelmap.array)


def test_reoriented_input_gives_the_same_physical_mask(sam_file, ct):
    seg = registry.create("sam", weights=sam_file, device="cpu")
    r1 = seg.segment(ct, PromptSet(boxes=BOXES[:1]))
    nx = ct.shape[2]
    flipped = synthetic.image(ct.array[:, :, ::-1].copy(), spacing_xyz=ct.spacing)
    flipped.direction = np.diag([-1.0, 1.0, 1.0])
    b = BOXES[0]
    fb = Box2D(b.slice, nx - 1 - b.x1, b.y0, nx - 1 - b.x0, b.y1, b.label, b.name)
    r2 = seg.segment(flipped, PromptSet(boxes=[fb]))
    np.testing.assert_array_equal(r2.labelmap.array[:, :, ::-1], r1.labelmap.array)
    assert r2.provenance["frame"]["flip"] == [False, False, True]


def test_box_outside_error_names_the_users_coordinates(sam_file):
    """On an image stored flipped (LPS direction diag(-1,-1,1), like the sample CT) the error must show the box
    and slice the user gave, not their transform into the model frame."""
    vol = ct_volume()
    img = synthetic.image(vol, spacing_xyz=(0.8, 0.8, 2.5))
    img.direction = np.diag([-1.0, -1.0, -1.0])
    seg = registry.create("sam", weights=sam_file, device="cpu")
    with pytest.raises(OrganSegBenchError, match="wholly outside") as err:
        seg.segment(img, PromptSet(boxes=[Box2D(1, 300.0, 200.0, 400.0, 260.0)]))
    assert "(300.0, 200.0, 400.0, 260.0)" in err.value.message and "slice 1 " in err.value.message
    with pytest.raises(OrganSegBenchError, match="box slice 9 is outside"):
        seg.segment(img, PromptSet(boxes=[Box2D(9, 10, 10, 20, 20)]))
    with pytest.raises(OrganSegBenchError, match=r"\(300.0, 200.0, 400.0, 260.0\)"):
        seg.segment(img, PromptSet(boxes=[Box2D(1, 300.0, 200.0, 400.0, 260.0)]), output="volume", slice_range=(0, 2))


def test_prompts_made_for_another_image_shape_are_refused(sam_file, ct):
    """A prompt file records the shape of the image it was derived for; boxes placed for another image (which may
    still fall inside this one) must not run silently."""
    seg = registry.create("sam", weights=sam_file, device="cpu")
    other = PromptSet(boxes=[Box2D(1, 14, 10, 40, 30)], image_shape=(30, 101, 122))
    with pytest.raises(OrganSegBenchError, match=r"made for an image of 30 x 101 x 122") as err:
        seg.segment(ct, other)
    assert "4 x 48 x 64" in err.value.message
    same = PromptSet(boxes=[Box2D(1, 14, 10, 40, 30)], image_shape=ct.shape)
    assert seg.segment(ct, same).labelmap.array.any()


def test_provenance_identifies_the_input_image(sam_file, ct, tmp_path):
    """Every written mask says which image it was made from: source file, grid and a hash of the voxel values."""
    import hashlib
    import json

    ct.metadata["source"] = "/data/ct01.nii.gz"
    seg = registry.create("sam", weights=sam_file, device="cpu")
    out = tmp_path / "m.nii.gz"
    seg.segment(ct, PromptSet(boxes=BOXES[:1]), out=out)
    rec = json.loads(out.with_name(out.name + ".provenance.json").read_text())["input"]
    assert rec["source"] == "/data/ct01.nii.gz" and rec["shape_zyx"] == list(ct.shape)
    assert rec["spacing_xyz_mm"] == [0.8, 0.8, 2.5]
    assert rec["array_sha256"] == hashlib.sha256(np.ascontiguousarray(ct.array).tobytes()).hexdigest()
    roi = seg.segment(ct, PromptSet(boxes=BOXES[:1]), roi=Box3D(0, 2, 4, 40, 6, 50))
    assert roi.provenance["input"] == rec  # the full image, not the crop


def test_volume_output_with_slice_range(sam_file, ct):
    seg = registry.create("sam", weights=sam_file, device="cpu")
    res = seg.segment(ct, PromptSet(boxes=[Box2D(1, 14, 10, 40, 30)]), output="volume", slice_range=(0, 2))
    assert [bool(res.labelmap.array[k].any()) for k in range(4)] == [True, True, True, False]
    with pytest.raises(OrganSegBenchError, match="without a slice range") as err:
        seg.segment(ct, PromptSet(boxes=[Box2D(1, 14, 10, 40, 30)]), output="volume")
    assert "--slices" in err.value.hint
    res3 = seg.segment(ct, PromptSet(boxes3d=[Box3D(0, 1, 10, 30, 14, 40)]), output="volume")
    assert [bool(res3.labelmap.array[k].any()) for k in range(4)] == [True, True, False, False]


def test_bad_inputs(sam_file, ct):
    with pytest.raises(UnknownNameError, match="samm") as err:
        registry.get("samm")
    assert "sam" in err.value.hint
    with pytest.raises(OrganSegBenchError, match="not in the cache") as err:
        registry.create("sam", device="cpu").segment(ct, PromptSet(boxes=BOXES[:1]))
    assert "weights download sam_vit_b" in err.value.hint and "weights import" in err.value.hint
    seg = registry.create("sam", weights=sam_file, device="cpu")
    with pytest.raises(OrganSegBenchError, match="wholly outside"):
        seg.segment(ct, PromptSet(boxes=[Box2D(1, 100, 100, 120, 120)]))
    res = seg.segment(ct, PromptSet(boxes=[Box2D(1, -10, 30, 20, 80)]))
    assert res.provenance["notes"]["clipped_boxes"] == 1 and res.labelmap.array[1].any()
    with pytest.raises(OrganSegBenchError, match="does not take text"):
        seg.segment(ct, PromptSet(text=["liver"]))
    with pytest.raises(OrganSegBenchError, match="needs a prompt"):
        seg.segment(ct, PromptSet())
    junk = sam_file.parent / "junk.pth"
    torch.save({"weight": torch.zeros(2)}, junk)
    with pytest.raises(InputFileError, match="not a SAM model"):
        registry.create("sam", weights=junk, device="cpu").segment(ct, PromptSet(boxes=BOXES[:1]))
    with pytest.raises(OrganSegBenchError, match="CUDA is not available"):
        registry.create("sam", weights=sam_file, device="cuda").segment(ct, PromptSet(boxes=BOXES[:1]))


def _oom_encoder(seg, fail_when):
    real = seg.model.image_encoder.forward
    calls = []

    def forward(x):
        calls.append(x.shape[0])
        if fail_when(x.shape[0]):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(x)

    seg.model.image_encoder.forward = forward
    return calls


def test_oom_shrinks_the_batch(sam_file, ct):
    ref = registry.create("sam", weights=sam_file, device="cpu", batch_size=1).segment(ct, PromptSet(boxes=BOXES))
    seg = registry.create("sam", weights=sam_file, device="cpu", batch_size=4)
    seg.ensure_loaded("cpu")
    calls = _oom_encoder(seg, lambda n: n > 1)
    res = seg.segment(ct, PromptSet(boxes=BOXES))
    assert calls == [2, 1, 1]  # batch of 2 slices failed, then one slice at a time
    assert res.provenance["notes"]["oom_batch_size"] == 1
    np.testing.assert_array_equal(res.labelmap.array, ref.labelmap.array)


def test_oom_at_batch_one_is_a_clear_error_and_leaves_no_file(sam_file, ct, tmp_path):
    seg = registry.create("sam", weights=sam_file, device="cpu", batch_size=2)
    seg.ensure_loaded("cpu")
    _oom_encoder(seg, lambda n: True)
    out = tmp_path / "mask.nii.gz"
    with pytest.raises(OrganSegBenchError, match="out of memory on cpu even with batch size 1") as err:
        seg.segment(ct, PromptSet(boxes=BOXES), out=out)
    assert "--device cpu" in err.value.hint or "smaller model" in err.value.hint
    assert not out.exists() and not list(tmp_path.glob("*partial*"))


def test_cancel_removes_partial_outputs(sam_file, ct, tmp_path):
    seg = registry.create("sam", weights=sam_file, device="cpu", batch_size=1)
    token = CancelToken()
    seen = []

    def progress(done, total):
        seen.append(done)
        token.cancel()

    out = tmp_path / "mask.nii.gz"
    with pytest.raises(RunCancelled):
        seg.segment(ct, PromptSet(boxes=BOXES), out=out, cancel=token, progress=progress)
    assert seen == [1]
    assert not list(tmp_path.iterdir())
    res = seg.segment(ct, PromptSet(boxes=BOXES), out=out)
    assert out.is_file() and (tmp_path / "mask.nii.gz.provenance.json").is_file()
    assert res.labelmap.array.any()


# ----------------------------------------------------------------------------------------------- MedSAM
def medsam_reference(model, slice_u8, box_xyxy):
    """MedSAM inference as described in its README/tutorial, written here independently:
    RGB, resize to 1024x1024 (skimage, order 3, anti-aliasing, uint8), min-max to [0, 1], encode; box scaled to
    1024; decoder without multimask; sigmoid; bilinear resize to the slice; > 0.5."""
    import torch.nn.functional as F
    from skimage import transform

    h, w = slice_u8.shape
    img3 = np.stack([slice_u8] * 3, axis=-1)
    img = transform.resize(img3, (1024, 1024), order=3, preserve_range=True, anti_aliasing=True).astype(np.uint8)
    img = (img - img.min()) / np.clip(img.max() - img.min(), a_min=1e-8, a_max=None)
    t = torch.tensor(img).float().permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        emb = model.image_encoder(t)
        box = torch.as_tensor(np.array([box_xyxy]) / np.array([w, h, w, h]) * 1024, dtype=torch.float)[:, None, :]
        sp, de = model.prompt_encoder(points=None, boxes=box, masks=None)
        lr, _ = model.mask_decoder(image_embeddings=emb, image_pe=model.prompt_encoder.get_dense_pe(),
                                   sparse_prompt_embeddings=sp, dense_prompt_embeddings=de, multimask_output=False)
        p = F.interpolate(torch.sigmoid(lr), size=(h, w), mode="bilinear", align_corners=False)
    return p.squeeze().numpy() > 0.5


@pytest.mark.slow
def test_medsam_matches_published_recipe(sam_file, ct):
    seg = registry.create("medsam", weights=sam_file, device="cpu", batch_size=2)
    boxes = [b for b in BOXES if b.slice == 2]  # two objects on one slice (MedSAM's resize is slow on CPU)
    res = seg.segment(ct, PromptSet(boxes=boxes))
    model = tiny_sam(seed=5)
    model.load_state_dict(torch.load(sam_file, weights_only=True))
    model.eval()
    exp = np.zeros(ct.shape[1:], dtype=np.uint8)
    for b in boxes:
        exp[medsam_reference(model, windowed(ct.array[2]), b.xyxy)] = b.label
    np.testing.assert_array_equal(res.labelmap.array[2], exp)
    assert 0 < (res.labelmap.array[2] > 0).sum() < res.labelmap.array[2].size
    # MedSAM's recipe differs from SAM's: the same weights and box give a different mask
    sam_res = registry.create("sam", weights=sam_file, device="cpu").segment(ct, PromptSet(boxes=boxes))
    assert not np.array_equal(sam_res.labelmap.array, res.labelmap.array)
    with pytest.raises(OrganSegBenchError, match="does not take point"):
        seg.segment(ct, PromptSet(points=[Point2D(1, 3, 3)]))


def test_roi_crop_runs_on_the_crop_and_pastes_back(sam_file, ct, tmp_path):
    from organsegbench.models.crop import crop_image

    seg = registry.create("sam", weights=sam_file, device="cpu")
    roi = Box3D(1, 2, 4, 40, 6, 50)  # k 1..2, y 4..40, x 6..50
    box = Box2D(2, 10, 8, 30, 30, name="liver")
    out = tmp_path / "roi.nii.gz"
    res = seg.segment(ct, PromptSet(boxes=[box]), roi=roi, out=out)
    assert res.labelmap.shape == ct.shape and out.is_file()
    sub = crop_image(ct, (1, 4, 6), (3, 41, 51))
    assert np.allclose(sub.origin, (6 * 0.8, 4 * 0.8, 1 * 2.5))
    direct = seg.segment(sub, PromptSet(boxes=[Box2D(1, 4, 4, 24, 26, name="liver")]))
    np.testing.assert_array_equal(res.labelmap.array[1:3, 4:41, 6:51], direct.labelmap.array)
    outside = res.labelmap.array.copy()
    outside[1:3, 4:41, 6:51] = 0
    assert not outside.any() and res.labelmap.array.any()
    assert res.provenance["roi"] == {"lo_zyx": [1, 4, 6], "hi_zyx_exclusive": [3, 41, 51]}
    assert res.provenance["prompts"]["boxes"][0]["x0"] == 10  # recorded in input indices
    with pytest.raises(OrganSegBenchError, match="lies outside the image"):
        seg.segment(ct, PromptSet(boxes=[box]), roi=Box3D(9, 12, 0, 5, 0, 5))
    with pytest.raises(OrganSegBenchError, match="wholly outside"):
        seg.segment(ct, PromptSet(boxes=[Box2D(1, 55, 42, 60, 45)]), roi=roi)
