"""SAT (Segment Anything in radiology scans by Text, Zhao et al.): text-prompted 3D segmentation.

Status: **declared, not runnable yet.** SAT's code has no licence, so it cannot be bundled; the intended design is
to call the user-installed SAT through its own entry point and map its outputs (written on a resampled, cropped
grid with an identity affine) back onto the input image. That mapping is not implemented, so the adapter validates
the text prompts and then raises a :class:`DependencyError` saying so.
"""

from __future__ import annotations

from pathlib import Path

from organsegbench.errors import DependencyError
from organsegbench.models.base import BaseSegmenter
from organsegbench.models.protocol import Capabilities


class SatSegmenter(BaseSegmenter):
    """SAT: text prompts, whole volume; an external component the user installs."""

    capabilities = Capabilities(
        name="sat", dims="3d", prompt_kinds=frozenset({"text"}), modalities=("CT", "MR", "PET"),
        gpu="required", code_licence="none (no licence file; install it yourself)", weights_licence="unknown",
        weights=(), package=None,
        description="SAT: text-prompted 3D segmentation (external component) — not wired yet",
    )

    def resolve_weights(self):
        raise DependencyError(
            "the SAT adapter is not available in this version: SAT has no licence, must be installed by the user, "
            "and mapping its resampled/cropped identity-affine outputs back onto the input is not implemented yet",
            "use TotalSegmentator or MOOSE for automatic segmentation",
        )

    def load(self, weights_path: Path, device: str) -> None:  # pragma: no cover - resolve_weights raises first
        raise NotImplementedError
