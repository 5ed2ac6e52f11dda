"""MedSAM (SAM ViT-B fine-tuned on medical images) with its own published inference recipe — not SAM's.

Recipe (MedSAM README/tutorial): the windowed slice as RGB uint8 is resized to 1024×1024 (bicubic, anti-aliased,
``skimage.transform.resize(order=3, preserve_range=True, anti_aliasing=True)`` then uint8), min–max normalised to
[0, 1] (no SAM mean/std), encoded; the box is scaled by ``1024 / (W, H)``; the decoder runs with
``multimask_output=False``; low-resolution logits go through a sigmoid, are resized bilinearly to the slice size
and thresholded at 0.5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from organsegbench.errors import DependencyError
from organsegbench.models.base import import_torch
from organsegbench.models.protocol import Capabilities
from organsegbench.models.sam import load_sam_model, to_rgb
from organsegbench.models.slicewise import SliceSegmenter
from organsegbench.prompts import Box2D, Point2D

MEDSAM_SIZE = 1024


def medsam_image(slice_u8: np.ndarray, size: int = MEDSAM_SIZE) -> np.ndarray:
    """MedSAM preprocessing of one uint8 slice -> float32 ``(3, size, size)`` in [0, 1]."""
    try:
        from skimage import transform
    except ImportError as exc:
        raise DependencyError("MedSAM's resize needs scikit-image", "pip install scikit-image") from exc
    img = transform.resize(to_rgb(slice_u8), (size, size), order=3, preserve_range=True,
                           anti_aliasing=True).astype(np.uint8)
    img = (img - img.min()) / np.clip(img.max() - img.min(), a_min=1e-8, a_max=None)
    return np.transpose(img, (2, 0, 1)).astype(np.float32)


class MedSamSegmenter(SliceSegmenter):
    """MedSAM: box prompts only, one box per object per slice."""

    capabilities = Capabilities(
        name="medsam", dims="2d", prompt_kinds=frozenset({"box"}), modalities=("CT", "MR", "PET"),
        gpu="recommended", code_licence="Apache-2.0", weights_licence="Apache-2.0", weights=("medsam_vit_b",),
        package="segment_anything",
        description="MedSAM (Ma et al. 2024): SAM ViT-B fine-tuned for medical images, box per slice",
    )
    recipe = "medsam-1024-minmax-sigmoid0.5-v1"

    def load(self, weights_path: Path, device: str) -> None:
        self.model, self.arch = load_sam_model(weights_path, device)

    def encode(self, slices: list[np.ndarray], device: str) -> list[Any]:
        torch = import_torch()
        size = self.arch["img_size"]
        batch = torch.as_tensor(np.stack([medsam_image(s, size) for s in slices]), device=device)
        with torch.no_grad():
            emb = self.model.image_encoder(batch)
        return [emb[i:i + 1] for i in range(len(slices))]

    def decode(self, embedding: Any, shape: tuple[int, int], boxes: list[Box2D], points: list[Point2D],
               device: str) -> np.ndarray:
        torch = import_torch()
        import torch.nn.functional as F

        h, w = shape
        size = self.arch["img_size"]
        out = np.zeros(shape, dtype=bool)
        emb = embedding.to(device)
        for b in boxes:
            box = np.array([b.xyxy], dtype=float) / np.array([w, h, w, h]) * size
            box_t = torch.as_tensor(box, dtype=torch.float, device=device)[:, None, :]
            with torch.no_grad():
                sparse, dense = self.model.prompt_encoder(points=None, boxes=box_t, masks=None)
                logits, _ = self.model.mask_decoder(
                    image_embeddings=emb, image_pe=self.model.prompt_encoder.get_dense_pe(),
                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)
                prob = torch.sigmoid(logits)
                prob = F.interpolate(prob, size=(h, w), mode="bilinear", align_corners=False)
            out |= prob.squeeze().cpu().numpy() > 0.5
        return out
