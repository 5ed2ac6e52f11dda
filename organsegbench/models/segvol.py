"""SegVol (Du et al. 2024): 3D text + box prompted segmentation with zoom-out-zoom-in inference.

Status: **declared, not runnable yet.** Prompts are validated (text resolved to canonical structure names with
close matches for unknown names, empty text refused), but SegVol's model code ships only with its Hugging Face
repository (``BAAI/SegVol``, loaded with ``trust_remote_code``) and is not a PyPI package, so this adapter raises a
:class:`DependencyError` that says so instead of running an unverified re-implementation of its inference.
"""

from __future__ import annotations

from pathlib import Path

from organsegbench.errors import DependencyError
from organsegbench.models.base import BaseSegmenter
from organsegbench.models.protocol import Capabilities


class SegVolSegmenter(BaseSegmenter):
    """SegVol: text (+ optional box) prompts, whole volume."""

    capabilities = Capabilities(
        name="segvol", dims="3d", prompt_kinds=frozenset({"text", "box", "point"}), modalities=("CT",),
        gpu="recommended", code_licence="MIT (repository; check)", weights_licence="MIT (model card; check)",
        weights=("segvol",), package="transformers",
        description="SegVol: universal 3D CT segmentation from text/box prompts (zoom-out-zoom-in) — not wired yet",
    )

    def resolve_weights(self):
        raise DependencyError(
            "the SegVol adapter is not available in this version: SegVol's model code is distributed only with "
            "its Hugging Face repository (BAAI/SegVol) and is not installable from PyPI",
            "use TotalSegmentator or MOOSE for text-free automatic segmentation, or SAM/MedSAM/SAM2 with boxes",
        )

    def load(self, weights_path: Path, device: str) -> None:  # pragma: no cover - resolve_weights raises first
        raise NotImplementedError
