"""SAM (Segment Anything, ViT-B/L/H) with its own predictor: one box (plus optional points) per slice.

Recipe (SAM's ``SamPredictor``): the windowed slice is stacked to RGB uint8, resized so the longest side is
1024 (``ResizeLongestSide``), normalised with SAM's pixel mean/std and padded; a box prompt is decoded with
``multimask_output=False``; a lone point with ``multimask_output=True`` keeping the highest-scoring mask. Slices
are encoded in batches (the image encoder is the same module the predictor calls), then decoding goes through
``SamPredictor.predict`` itself, so masks equal the predictor's.

The network is built from the checkpoint's own tensor shapes (ViT-B/L/H, or any smaller test configuration), so
every SAM-format state dict loads through the same path with ``torch.load(weights_only=True)`` and strict keys.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from organsegbench.errors import DependencyError, InputFileError
from organsegbench.models.base import import_torch
from organsegbench.models.protocol import Capabilities
from organsegbench.models.slicewise import SliceSegmenter
from organsegbench.prompts import Box2D, Point2D


def _import_segment_anything():
    try:
        import segment_anything
    except ImportError as exc:
        raise DependencyError("SAM needs the segment-anything package", "pip install 'organsegbench[models]'") from exc
    return segment_anything


def checkpoint_error(path: Path, exc: BaseException, expected: str) -> InputFileError:
    """A clear error for a file that is not the ``expected`` checkpoint. torch's own message is cut to its first
    sentence: its advice to retry with ``weights_only=False`` would run code from an untrusted file."""
    import pickle

    first = str(exc).strip().split(". ")[0].splitlines()[0] if str(exc).strip() else ""
    unsafe = (": it does not load with torch.load(weights_only=True), so it is another kind of file or holds "
              "code (which is never run)") if isinstance(exc, pickle.UnpicklingError) else ""
    return InputFileError(
        f"{Path(path).name} is not a {expected} checkpoint ({type(exc).__name__}"
        f"{': ' + first[:200] if first else ''}){unsafe}",
        "give the model's official checkpoint (`organsegbench weights list` shows names and sha256; a damaged or "
        "truncated download is replaced by `organsegbench weights download NAME`)")


def load_state_dict(path: Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with a clear error for non-checkpoint files."""
    torch = import_torch()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise checkpoint_error(path, exc, "PyTorch") from exc
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise InputFileError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return state


def sam_config_from_state_dict(sd: dict[str, Any]) -> dict[str, Any]:
    """Architecture of a SAM state dict, read from its tensor shapes (raises for non-SAM files)."""
    key = "image_encoder.patch_embed.proj.weight"
    if key not in sd:
        raise InputFileError("the checkpoint is not a SAM model (no image_encoder.patch_embed)",
                             "give a SAM/MedSAM checkpoint (sam_vit_b_01ec64.pth, medsam_vit_b.pth)")
    embed_dim, _, patch, _ = sd[key].shape
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"image_encoder\.blocks\.(\d+)\.", k))})
    grid = sd["image_encoder.pos_embed"].shape[1]
    img_size = grid * patch
    global_idx, window = [], 14
    head_dim = None
    for i in blocks:
        rp = sd[f"image_encoder.blocks.{i}.attn.rel_pos_h"]
        head_dim = rp.shape[1]
        size = (rp.shape[0] + 1) // 2
        if size == grid:
            global_idx.append(i)
        else:
            window = size
    dec_layers = {int(m.group(1)) for k in sd if (m := re.match(r"mask_decoder\.transformer\.layers\.(\d+)\.", k))}
    iou_layers = {int(m.group(1)) for k in sd if (m := re.match(r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\.", k))}
    return {
        "embed_dim": int(embed_dim), "patch": int(patch), "img_size": int(img_size), "depth": len(blocks),
        "num_heads": int(embed_dim // head_dim), "global_attn_indexes": tuple(global_idx), "window_size": int(window),
        "mlp_ratio": sd["image_encoder.blocks.0.mlp.lin1.weight"].shape[0] / embed_dim,
        "out_chans": int(sd["image_encoder.neck.0.weight"].shape[0]),
        "mask_in_chans": int(sd["prompt_encoder.mask_downscaling.3.weight"].shape[0]),
        "decoder_depth": len(dec_layers),
        "decoder_mlp_dim": int(sd["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0]),
        "num_multimask_outputs": int(sd["mask_decoder.mask_tokens.weight"].shape[0]) - 1,
        "iou_head_depth": len(iou_layers),
        "iou_head_hidden_dim": int(sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]),
    }


def build_sam(cfg: dict[str, Any]):
    """A ``segment_anything.modeling.Sam`` with architecture ``cfg`` (decoder heads: SAM's 8)."""
    torch = import_torch()
    _import_segment_anything()
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = cfg["img_size"] // cfg["patch"]
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=cfg["depth"], embed_dim=cfg["embed_dim"], img_size=cfg["img_size"], mlp_ratio=cfg["mlp_ratio"],
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=cfg["num_heads"], patch_size=cfg["patch"],
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=cfg["global_attn_indexes"],
            window_size=cfg["window_size"], out_chans=cfg["out_chans"]),
        prompt_encoder=PromptEncoder(embed_dim=cfg["out_chans"], image_embedding_size=(grid, grid),
                                     input_image_size=(cfg["img_size"], cfg["img_size"]),
                                     mask_in_chans=cfg["mask_in_chans"]),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=cfg["num_multimask_outputs"],
            transformer=TwoWayTransformer(depth=cfg["decoder_depth"], embedding_dim=cfg["out_chans"],
                                          mlp_dim=cfg["decoder_mlp_dim"], num_heads=8),
            transformer_dim=cfg["out_chans"], iou_head_depth=cfg["iou_head_depth"],
            iou_head_hidden_dim=cfg["iou_head_hidden_dim"]),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


def load_sam_model(path: Path, device: str):
    """Build SAM from the checkpoint's shapes, load it strictly and move it to ``device`` (eval mode)."""
    sd = load_state_dict(path)
    cfg = sam_config_from_state_dict(sd)
    model = build_sam(cfg)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise InputFileError(f"{Path(path).name} does not match the SAM architecture "
                             f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})")
    return model.eval().to(device), cfg


def to_rgb(slice_u8: np.ndarray) -> np.ndarray:
    """Grey uint8 ``(H, W)`` -> RGB ``(H, W, 3)``."""
    return np.repeat(np.asarray(slice_u8, dtype=np.uint8)[..., None], 3, axis=2)


class SamSegmenter(SliceSegmenter):
    """SAM through ``segment_anything.SamPredictor`` (batched encoder, predictor decoding)."""

    capabilities = Capabilities(
        name="sam", dims="2d", prompt_kinds=frozenset({"box", "point"}), modalities=("CT", "MR", "PET"),
        gpu="recommended", code_licence="Apache-2.0", weights_licence="Apache-2.0",
        weights=("sam_vit_b", "sam_vit_l", "sam_vit_h"), package="segment_anything",
        description="Segment Anything (Meta): 2D box/point prompts slice by slice with SamPredictor",
    )
    recipe = "sam-predictor-v1"

    def load(self, weights_path: Path, device: str) -> None:
        _import_segment_anything()
        from segment_anything import SamPredictor

        self.model, self.arch = load_sam_model(weights_path, device)
        self.predictor = SamPredictor(self.model)

    def encode(self, slices: list[np.ndarray], device: str) -> list[Any]:
        torch = import_torch()
        tensors, sizes = [], []
        for s in slices:
            img = self.predictor.transform.apply_image(to_rgb(s))
            t = torch.as_tensor(img, device=device).permute(2, 0, 1).contiguous()[None]
            sizes.append((tuple(int(v) for v in s.shape[:2]), tuple(int(v) for v in t.shape[-2:])))
            tensors.append(self.model.preprocess(t))
        with torch.no_grad():
            feats = self.model.image_encoder(torch.cat(tensors))
        return [{"features": feats[i:i + 1], "original_size": sizes[i][0], "input_size": sizes[i][1]}
                for i in range(len(slices))]

    def _set(self, emb: dict[str, Any], device: str) -> None:
        p = self.predictor
        p.reset_image()
        p.features = emb["features"].to(device)
        p.original_size = tuple(emb["original_size"])
        p.input_size = tuple(emb["input_size"])
        p.is_image_set = True

    def decode(self, embedding: Any, shape: tuple[int, int], boxes: list[Box2D], points: list[Point2D],
               device: str) -> np.ndarray:
        self._set(embedding, device)
        coords = np.array([[p.x, p.y] for p in points], dtype=float) if points else None
        plabels = np.array([1 if p.positive else 0 for p in points]) if points else None
        if not boxes:
            multi = len(points) == 1
            masks, scores, _ = self.predictor.predict(point_coords=coords, point_labels=plabels,
                                                      multimask_output=multi)
            return masks[int(np.argmax(scores))] if multi else masks[0]
        out = np.zeros(shape, dtype=bool)
        for b in boxes:  # several boxes of one object (per-component prompts): union of masks
            masks, _, _ = self.predictor.predict(point_coords=coords, point_labels=plabels,
                                                 box=np.array(b.xyxy, dtype=float), multimask_output=False)
            out |= masks[0]
        return out
