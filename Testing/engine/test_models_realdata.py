"""Real CT (TotalSegmentator's abdomen slab, LPS direction diag(-1,-1,1)): prompts derived from its reference
liver mask drive the SAM adapter through the model frame; the result maps back exactly onto the input grid and
equals SamPredictor run on the reoriented slice with the reoriented box."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import save_tiny_sam, tiny_sam

from organsegbench.models import registry
from organsegbench.prompts import PromptProtocol, PromptSet, prompts_from_mask

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")
pytestmark = [pytest.mark.models, pytest.mark.usefixtures("model_env")]


def test_sam_on_real_ct_with_mask_derived_prompts(sample_data, tmp_path):
    from segment_anything import SamPredictor

    from organsegbench.io import read_image

    case = sample_data.case("abdomen_ct")
    ct = read_image(case.path("image"))
    ref = read_image(case.path("seg_fast"))
    assert np.allclose(ct.direction, np.diag([-1.0, -1.0, 1.0]))
    ps = prompts_from_mask(ref.array, ref.spacing_zyx, PromptProtocol(label=5, margin_mm=6.0, slices="gt"),
                           name="liver")
    assert ps.protocol["label"] == 5 and ps.boxes
    keep = [ps.boxes[0], ps.boxes[len(ps.boxes) // 2]]
    w = save_tiny_sam(tmp_path / "tiny.pth")
    res = registry.create("sam", weights=w, device="cpu").segment(ct, PromptSet(boxes=keep, protocol=ps.protocol))
    out = res.labelmap
    assert out.shape == ct.shape and out.spacing == ct.spacing and out.origin == ct.origin
    assert np.allclose(out.direction, ct.direction)
    assert res.provenance["frame"]["flip"] == [False, True, True]
    assert res.provenance["prompt_protocol"]["margin_mm"] == 6.0

    model = tiny_sam(seed=4)
    model.load_state_dict(torch.load(w, weights_only=True))
    pred = SamPredictor(model.eval())
    ny, nx = ct.shape[1:]
    for b in keep:
        sl = ct.array[b.slice][::-1, ::-1]  # the model frame: rows and columns reversed
        u8 = np.round(np.clip((sl.astype(np.float32) + 160.0) / 400.0, 0, 1) * 255).astype(np.uint8)
        pred.set_image(np.repeat(u8[..., None], 3, axis=2))
        box = np.array([nx - 1 - b.x1, ny - 1 - b.y1, nx - 1 - b.x0, ny - 1 - b.y0])
        m, _, _ = pred.predict(box=box, multimask_output=False)
        np.testing.assert_array_equal(out.array[b.slice] == 1, m[0][::-1, ::-1])
    others = [k for k in range(ct.shape[0]) if k not in {b.slice for b in keep}]
    assert not out.array[others].any()
