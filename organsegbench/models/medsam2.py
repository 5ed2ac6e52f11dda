"""MedSAM2: SAM 2.1 hiera-tiny fine-tuned on 3D medical images and videos, run at 512 px through the SAM 2
video predictor (a box on a key slice propagated both ways).

Configuration. MedSAM2 ships its own Hydra file ``sam2/configs/sam2.1_hiera_t512.yaml`` (repository
bowang-lab/MedSAM2, used by its ``medsam2_infer_3D_CT.py`` with ``MedSAM2_latest.pt``). We do not copy it: we build
it from the installed ``sam2`` package's ``configs/sam2.1/sam2.1_hiera_t.yaml`` plus :data:`MEDSAM2_OVERRIDES`.
Field by field, the 512-px file differs from SAM 2.1-tiny (1024 px) in exactly three values::

    model.image_size                                               1024     -> 512
    model.memory_attention.layer.self_attention.feat_sizes         [64, 64] -> [32, 32]
    model.memory_attention.layer.cross_attention.feat_sizes        [64, 64] -> [32, 32]

(the RoPE grids follow the stride-16 image embedding: 512 / 16 = 32). Every other field — ``num_maskmem: 7``,
memory attention ``num_layers: 4``, ``multimask_output_for_tracking: true``, the Hiera trunk (embed_dim 96,
stages [1, 2, 7, 2], global_att_blocks [5, 7, 9], window_pos_embed_bkg_spatial_size [7, 7]), the memory encoder,
the sigmoid scale/bias for the memory encoder — is identical. Source of this comparison: the file text of
``sam2/configs/sam2.1_hiera_t512.yaml`` as found in public copies of the MedSAM2 repository (the search index did
not hold bowang-lab/MedSAM2's own copy of that path; five copies were read, the unmodified ones agree on the three
differences above; copies that also changed ``num_layers``, ``multimask_output_for_tracking`` or ``image_size``
carry their authors' edits). ``Testing/engine/test_models_medsam2_config.py`` pins the composed config.

The overrides are applied in code for every MedSAM2 run (also when a checkpoint is given by path rather than by
catalog name); the catalog's ``config_overrides`` for ``medsam2_latest`` say the same and are not applied twice.
No published sha256 is known for ``MedSAM2_latest.pt``.
"""

from __future__ import annotations

from organsegbench.models.protocol import Capabilities
from organsegbench.models.sam2 import DEFAULT_CONFIG, Sam2VideoSegmenter

#: MedSAM2's config = SAM 2.1 hiera-tiny (``configs/sam2.1/sam2.1_hiera_t.yaml``) + these Hydra overrides
MEDSAM2_CONFIG = DEFAULT_CONFIG
MEDSAM2_OVERRIDES: tuple[str, ...] = (
    "++model.image_size=512",
    "++model.memory_attention.layer.self_attention.feat_sizes=[32,32]",
    "++model.memory_attention.layer.cross_attention.feat_sizes=[32,32]",
)


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

    def sam2_config(self) -> tuple[str, list[str]]:
        """MedSAM2's config and overrides; a ``config`` option or extra ``hydra_overrides`` still apply after them."""
        config, overrides = super().sam2_config()
        if "config" not in self.options:
            config = MEDSAM2_CONFIG
        extra = [o for o in overrides if o not in MEDSAM2_OVERRIDES]
        return config, [*MEDSAM2_OVERRIDES, *extra]
