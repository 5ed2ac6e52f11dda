"""Training-free fusion strategies: soft mean, majority vote, STAPLE and multi-label STAPLE (SimpleITK)."""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from organsegbench.errors import ConfigError
from organsegbench.fusion.base import register_method


def _foreground_labels(arrays: list[np.ndarray]) -> list[int]:
    vals: set[int] = set()
    for a in arrays:
        vals.update(int(v) for v in np.unique(a) if v != 0)
    return sorted(vals)


def _check_labels(arrays: list[np.ndarray], method: str) -> None:
    for i, a in enumerate(arrays):
        if not (a.dtype == bool or np.issubdtype(a.dtype, np.integer)):
            raise ConfigError(f"{method} needs integer label maps; input {i + 1} has dtype {a.dtype}",
                              hint="binarise probability maps first, or use --method mean for soft inputs")
        if a.size and int(a.min()) < 0:
            raise ConfigError(f"input {i + 1} has negative label values", hint="labels must be >= 0")


@register_method("mean", "soft mean of the inputs (binary masks, probabilities in [0, 1], or per label of label "
                         "maps) kept where it is >= threshold (default 0.5)")
def mean_fusion(arrays: list[np.ndarray], threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray | None,
                                                                              dict[int, dict[str, Any]]]:
    """Binary/soft inputs: ``mean >= threshold``. Label maps with several labels: per label the fraction of models
    voting for it; the label with the highest fraction wins where that fraction is >= ``threshold`` (ties: lowest
    label value)."""
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must lie in [0, 1]; got {threshold}", hint="use e.g. --threshold 0.5")
    soft = [a for a in arrays if np.issubdtype(a.dtype, np.floating)]
    if soft:
        for i, a in enumerate(arrays):
            if a.size and (float(np.nanmin(a)) < 0 or float(np.nanmax(a)) > 1):
                raise ConfigError(f"input {i + 1} has values outside [0, 1] ({np.nanmin(a):g}..{np.nanmax(a):g})",
                                  hint="pass probabilities in [0, 1] or integer label maps")
        prob = np.mean([a.astype(np.float64) for a in arrays], axis=0)
        return (prob >= threshold).astype(np.uint8), prob, {}
    labs = _foreground_labels(arrays)
    if len(labs) <= 1:
        prob = np.mean([(a > 0).astype(np.float64) for a in arrays], axis=0)
        return np.where(prob >= threshold, labs[0] if labs else 1, 0), prob, {}
    frac = np.stack([np.mean([a == lab for a in arrays], axis=0) for lab in labs])
    best = np.argmax(frac, axis=0)
    top = np.take_along_axis(frac, best[None], axis=0)[0]
    fused = np.where(top >= threshold, np.asarray(labs)[best], 0)
    return fused, None, {}


@register_method("majority", "label chosen by the most models (sitk.LabelVoting); ties and binary half/half "
                             "splits become background")
def majority_fusion(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None, dict[int, dict[str, Any]]]:
    """Plurality vote per voxel; undecided voxels (ties) are background (0)."""
    _check_labels(arrays, "majority vote")
    imgs = [sitk.GetImageFromArray(a.astype(np.uint16)) for a in arrays]
    out = sitk.GetArrayFromImage(sitk.LabelVoting(imgs, 0))
    return out, None, {}


@register_method("staple", "STAPLE (Warfield 2004, sitk.STAPLE) of binary masks: consensus probability >= "
                           "threshold (default 0.5), per-model sensitivity/specificity estimates; label maps with "
                           "several labels go to multilabel_staple")
def staple_fusion(arrays: list[np.ndarray], threshold: float = 0.5,
                  max_iterations: int = 200) -> tuple[np.ndarray, np.ndarray | None, dict[int, dict[str, Any]]]:
    """Binary STAPLE on the foreground (> 0) of each input."""
    _check_labels(arrays, "STAPLE")
    if len(_foreground_labels(arrays)) > 1:
        return multilabel_staple_fusion(arrays, max_iterations=max_iterations)
    if not any(a.any() for a in arrays):
        raise ConfigError("every input is empty; STAPLE has nothing to estimate",
                          hint="check that the inputs contain the structure")
    f = sitk.STAPLEImageFilter()
    f.SetForegroundValue(1.0)
    f.SetMaximumIterations(int(max_iterations))
    prob = sitk.GetArrayFromImage(f.Execute([sitk.GetImageFromArray((a > 0).astype(np.uint8)) for a in arrays]))
    sens, spec = f.GetSensitivity(), f.GetSpecificity()
    est = {i: {"staple_sensitivity": float(sens[i]), "staple_specificity": float(spec[i])}
           for i in range(len(arrays))}
    label = (_foreground_labels(arrays) or [1])[0]
    return np.where(prob >= threshold, label, 0), prob.astype(np.float64), est


@register_method("multilabel_staple", "multi-label STAPLE (Rohlfing 2004, sitk.MultiLabelSTAPLE): per-model "
                                      "confusion matrices, per-label sensitivity/specificity; undecided = 0")
def multilabel_staple_fusion(arrays: list[np.ndarray], max_iterations: int = 200
                             ) -> tuple[np.ndarray, np.ndarray | None, dict[int, dict[str, Any]]]:
    """Multi-label STAPLE; sensitivity of label j = P(model says j | true j); specificity of j = P(model says not j
    | true not j), weighting the true labels by their frequency in the fused map."""
    _check_labels(arrays, "multi-label STAPLE")
    f = sitk.MultiLabelSTAPLEImageFilter()
    f.SetLabelForUndecidedPixels(0)
    f.SetMaximumNumberOfIterations(int(max_iterations))
    fused = sitk.GetArrayFromImage(f.Execute([sitk.GetImageFromArray(a.astype(np.uint16)) for a in arrays]))
    n_labels = int(max(int(a.max(initial=0)) for a in arrays)) + 1
    freq = np.bincount(fused.ravel().astype(np.int64), minlength=n_labels)[:n_labels].astype(float)
    est = {}
    for i in range(len(arrays)):
        cm = np.asarray(f.GetConfusionMatrix(i), dtype=float).reshape(n_labels + 1, n_labels)  # [observed, true]
        sens, spec = {}, {}
        for j in range(1, n_labels):
            sens[j] = float(cm[j, j])
            others = [k for k in range(n_labels) if k != j]
            w = freq[others]
            spec[j] = float(np.sum(w * (1.0 - cm[j, others])) / w.sum()) if w.sum() > 0 else float("nan")
        est[i] = {"staple_sensitivity": sens, "staple_specificity": spec,
                  "confusion_matrix_observed_by_true": cm.tolist()}
    return fused, None, est
