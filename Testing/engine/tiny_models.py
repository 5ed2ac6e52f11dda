"""Tiny randomly initialised models saved in the real checkpoint formats (test helper, seeded)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np


def tiny_sam(seed: int = 0, std: float = 0.1):
    """A SAM with a 2-block, 16-wide ViT at SAM's 1024 input (the predictor's ResizeLongestSide needs 1024).

    Weights are normal(0, ``std``) so that masks are neither empty nor full (default init gives all-ones).
    """
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    d = 32
    sam = Sam(
        image_encoder=ImageEncoderViT(depth=2, embed_dim=16, img_size=1024, mlp_ratio=2,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=2, patch_size=16,
                                      qkv_bias=True, use_rel_pos=True, global_attn_indexes=(1,), window_size=14,
                                      out_chans=d),
        prompt_encoder=PromptEncoder(embed_dim=d, image_embedding_size=(64, 64), input_image_size=(1024, 1024),
                                     mask_in_chans=8),
        mask_decoder=MaskDecoder(num_multimask_outputs=3,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=d, mlp_dim=32, num_heads=8),
                                 transformer_dim=d, iou_head_depth=2, iou_head_hidden_dim=16),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    )
    with torch.no_grad():
        for p in sam.parameters():
            if p.dim() > 1:
                p.normal_(0, std)
    return sam.eval()


def save_tiny_sam(path: Path, seed: int = 0) -> Path:
    """Save a tiny SAM as a plain state dict (the format of sam_vit_b_01ec64.pth / medsam_vit_b.pth)."""
    import torch

    torch.save(tiny_sam(seed).state_dict(), path)
    return path


def ct_volume(shape=(4, 48, 64), seed: int = 0) -> np.ndarray:
    """A CT-like volume in HU: air background, a soft-tissue body, a bright blob."""
    rng = np.random.default_rng(seed)
    vol = np.full(shape, -1000.0)
    nz, ny, nx = shape
    yy, xx = np.mgrid[:ny, :nx]
    body = ((yy - ny / 2) / (ny * 0.4)) ** 2 + ((xx - nx / 2) / (nx * 0.4)) ** 2 <= 1
    vol[:, body] = 40.0
    blob = ((yy - ny * 0.45) / 6) ** 2 + ((xx - nx * 0.4) / 9) ** 2 <= 1
    vol[:, blob] = 180.0
    return (vol + rng.normal(0, 10, shape)).astype(np.int16)
