"""MedSAM2: SAM 2.1 hiera-tiny fine-tuned on 3D medical images and videos, run at 512 px through the SAM 2
video predictor (a box on a key slice propagated both ways).

The catalog entry ``medsam2_latest`` supplies the config (``sam2.1_hiera_t``) and the 512-px overrides (image size
and the memory-attention RoPE feature size 32×32). No published sha256 is known for ``MedSAM2_latest.pt``.
"""

from __future__ import annotations

from organsegbench.models.protocol import Capabilities
from organsegbench.models.sam2 import Sam2VideoSegmenter


class MedSam2Segmenter(Sam2VideoSegmenter):
    """MedSAM2 (Ma et al. 2025) with its 512-px SAM 2.1-tiny configuration."""

    capabilities = Capabilities(
        name="medsam2", dims="3d", prompt_kinds=frozenset({"box", "point"}), modalities=("CT", "MR", "PET"),
        gpu="recommended", code_licence="Apache-2.0", weights_licence="Apache-2.0 (check the model card)",
        weights=("medsam2_latest",), package="sam2",
        description="MedSAM2: SAM 2.1-tiny at 512 px fine-tuned for 3D medical images; key-slice box propagation",
    )

    def accepted_weight_models(self) -> tuple[str, ...]:
        return ("medsam2",)
