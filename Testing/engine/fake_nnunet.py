"""Fake nnU-Net v2 model folders (plans.json, dataset.json, fold_0/checkpoint_final.pth with random weights of a
tiny PlainConvUNet) in the layout TotalSegmentator and MOOSE load (test helper, seeded)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path


def plans(dataset_name: str, spacing: float, patch: int = 32) -> dict:
    """Minimal nnU-Net v2 plans with a 2-stage 3D PlainConvUNet (4/8 features)."""
    return {
        "dataset_name": dataset_name, "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [spacing] * 3, "original_median_shape_after_transp": [64, 64, 64],
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {
            "max": 3000.0, "mean": 100.0, "median": 80.0, "min": -1000.0, "percentile_00_5": -1000.0,
            "percentile_99_5": 1500.0, "std": 300.0}},
        "configurations": {"3d_fullres": {
            "data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 2, "patch_size": [patch] * 3, "median_image_size_in_voxels": [64, 64, 64],
            "spacing": [spacing] * 3, "normalization_schemes": ["CTNormalization"], "use_mask_for_norm": [False],
            "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
            "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
            "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                                   "force_separate_z": None},
            "architecture": {
                "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                "arch_kwargs": {
                    "n_stages": 2, "features_per_stage": [4, 8], "conv_op": "torch.nn.modules.conv.Conv3d",
                    "kernel_sizes": [[3, 3, 3], [3, 3, 3]], "strides": [[1, 1, 1], [2, 2, 2]],
                    "n_conv_per_stage": [1, 1], "n_conv_per_stage_decoder": [1], "conv_bias": True,
                    "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                    "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
                    "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}},
                "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
            "batch_dice": True}},
    }


def write_model_folder(root: Path, dataset_name: str, trainer: str, labels: dict[int, str], spacing: float,
                       seed: int = 0, payload: object | None = None) -> Path:
    """Write ``root/<dataset_name>/<trainer>__nnUNetPlans__3d_fullres`` and return the dataset folder.

    The checkpoint has the keys nnU-Net v2 saves, including training logs with numpy floats and a ``torch.device``
    in ``init_args``; ``payload`` (if given) is stored under ``"extra"`` (to test the pickle safety scan).
    """
    import numpy as np
    import torch
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    ds = root / dataset_name
    mf = ds / f"{trainer}__nnUNetPlans__3d_fullres"
    (mf / "fold_0").mkdir(parents=True, exist_ok=True)
    p = plans(dataset_name, spacing)
    (mf / "plans.json").write_text(json.dumps(p))
    (mf / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": {"background": 0, **{n: int(v) for v, n in labels.items()}},
        "numTraining": 1, "file_ending": ".nii.gz"}))
    torch.manual_seed(seed)
    kw = p["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    net = PlainConvUNet(input_channels=1, n_stages=2, features_per_stage=kw["features_per_stage"],
                        conv_op=torch.nn.Conv3d, kernel_sizes=kw["kernel_sizes"], strides=kw["strides"],
                        n_conv_per_stage=kw["n_conv_per_stage"], num_classes=len(labels) + 1,
                        n_conv_per_stage_decoder=kw["n_conv_per_stage_decoder"], conv_bias=True,
                        norm_op=torch.nn.InstanceNorm3d, norm_op_kwargs={"eps": 1e-5, "affine": True},
                        nonlin=torch.nn.LeakyReLU, nonlin_kwargs={"inplace": True}, deep_supervision=False)
    ckpt = {"network_weights": net.state_dict(), "trainer_name": trainer, "optimizer_state": None,
            "grad_scaler_state": None, "current_epoch": 1, "_best_ema": np.float64(0.5),
            "logging": {"mean_fg_dice": [np.float64(0.5)], "train_losses": [np.mean([0.9, 0.7])],
                        "epoch_start_timestamps": [1.7e9]},
            "init_args": {"configuration": "3d_fullres", "fold": 0, "plans": p, "device": torch.device("cpu")},
            "inference_allowed_mirroring_axes": None}
    if payload is not None:
        ckpt["extra"] = payload
    torch.save(ckpt, mf / "fold_0" / "checkpoint_final.pth")
    return ds


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """Zip ``folder`` with its own name as the top-level member (like the release zips)."""
    with zipfile.ZipFile(zip_path, "w") as zf:
        for f in folder.rglob("*"):
            if f.is_file():
                zf.write(f, f.relative_to(folder.parent))
    return zip_path
