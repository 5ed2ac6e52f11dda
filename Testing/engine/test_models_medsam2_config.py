"""MedSAM2's configuration: SAM 2.1 hiera-tiny with exactly the three 512-px changes of MedSAM2's
``sam2/configs/sam2.1_hiera_t512.yaml`` (bowang-lab/MedSAM2), applied whatever way the checkpoint is given."""

from __future__ import annotations

import pytest

from organsegbench.models import registry

pytest.importorskip("sam2")
pytestmark = [pytest.mark.models, pytest.mark.usefixtures("model_env")]


def _compose(config: str, overrides: list[str]) -> dict:
    import sam2  # noqa: F401  (its import initialises Hydra on the package's config module)
    from hydra import compose
    from omegaconf import OmegaConf

    return OmegaConf.to_container(compose(config_name=config, overrides=overrides), resolve=True)["model"]


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


@pytest.mark.parametrize("weights", [None, "some/dir/MedSAM2_latest.pt"])
def test_medsam2_config_differs_from_sam21_tiny_in_exactly_the_512px_fields(weights):
    seg = registry.create("medsam2", weights=weights, device="cpu")
    seg.weights_name = "medsam2_latest" if weights is None else None  # catalog name vs a plain path
    config, overrides = seg.sam2_config()
    assert config == "configs/sam2.1/sam2.1_hiera_t.yaml"
    ours = _flatten(_compose(config, overrides))
    tiny = _flatten(_compose("configs/sam2.1/sam2.1_hiera_t.yaml", []))
    diff = {k: (tiny.get(k), ours.get(k)) for k in set(ours) | set(tiny) if ours.get(k) != tiny.get(k)}
    assert diff == {
        "image_size": (1024, 512),
        "memory_attention.layer.self_attention.feat_sizes": ([64, 64], [32, 32]),
        "memory_attention.layer.cross_attention.feat_sizes": ([64, 64], [32, 32]),
    }
    # fields MedSAM2 keeps from SAM 2.1-tiny (a regression in either config would show here)
    assert ours["num_maskmem"] == 7
    assert ours["memory_attention.num_layers"] == 4
    assert ours["multimask_output_for_tracking"] is True
    assert ours["image_encoder.trunk.embed_dim"] == 96
    assert ours["image_encoder.trunk.stages"] == [1, 2, 7, 2]
    assert ours["image_encoder.trunk.global_att_blocks"] == [5, 7, 9]
    assert ours["image_encoder.trunk.window_pos_embed_bkg_spatial_size"] == [7, 7]
    # RoPE grid = image embedding grid (stride 16)
    assert ours["memory_attention.layer.self_attention.feat_sizes"] == [ours["image_size"] // 16] * 2


def test_user_overrides_come_after_medsam2s_and_are_not_duplicated():
    seg = registry.create("medsam2", device="cpu", hydra_overrides=["++model.image_size=512", "++model.num_maskmem=3"])
    seg.weights_name = "medsam2_latest"
    _, overrides = seg.sam2_config()
    assert overrides.count("++model.image_size=512") == 1
    assert overrides[-1] == "++model.num_maskmem=3"
