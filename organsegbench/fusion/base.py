"""Fusion registry, input preparation (grids, vocabularies) and the result type."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from organsegbench.errors import ConfigError, GeometryMismatchError, unknown_name
from organsegbench.io.image import Image
from organsegbench.provenance import provenance


@dataclass
class FusionResult:
    """A fused label map plus per-model performance estimates.

    Attributes:
        labelmap: fused label map (an :class:`Image` on the inputs' grid when they were images, else an array).
        labels: fused label value -> structure name (``None`` when the inputs carried no names).
        probability: soft consensus in [0, 1] for binary methods that have one (mean, STAPLE), else ``None``.
        per_model: model name -> statistics. STAPLE: its *estimated* ``sensitivity``/``specificity`` (per label for
            multi-label STAPLE, plus the confusion matrix). Every method: ``dice_vs_consensus``,
            ``sensitivity_vs_consensus`` and ``specificity_vs_consensus`` of each input against the fused result.
        metadata: method, options, model names, provenance.
    """

    labelmap: Image | np.ndarray
    labels: dict[int, str] | None = None
    probability: np.ndarray | None = None
    per_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def array(self) -> np.ndarray:
        """The fused label map as a numpy array."""
        return self.labelmap.array if isinstance(self.labelmap, Image) else self.labelmap


#: signature of a strategy: (arrays, options) -> (fused array, probability or None, per-model estimates)
Strategy = Callable[..., tuple[np.ndarray, np.ndarray | None, dict[int, dict[str, Any]]]]
FUSION_METHODS: dict[str, Strategy] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_method(name: str, description: str) -> Callable[[Strategy], Strategy]:
    """Decorator adding a strategy to :data:`FUSION_METHODS` under ``name``.

    A strategy takes ``(arrays: list[np.ndarray], **options)`` (arrays share one shape; integer label maps or, for
    soft methods, probabilities in [0, 1]) and returns ``(fused array, probability or None, {model index: stats})``.
    """
    def deco(fn: Strategy) -> Strategy:
        FUSION_METHODS[name] = fn
        _DESCRIPTIONS[name] = description
        return fn

    return deco


def describe_methods() -> dict[str, str]:
    """Registered method names with one-line descriptions."""
    return dict(_DESCRIPTIONS)


def _as_arrays(inputs: Sequence[Image | np.ndarray], names: list[str]) -> tuple[list[np.ndarray], Image | None]:
    from organsegbench.io.geometry import describe_mismatch, same_grid

    ref = inputs[0] if isinstance(inputs[0], Image) else None
    arrays = []
    for name, item in zip(names, inputs, strict=True):
        if isinstance(item, Image):
            if ref is not None and not same_grid(ref, item):
                raise GeometryMismatchError(
                    f"{names[0]} and {name} are on different grids: {describe_mismatch(ref, item, names[0], name)}",
                    hint="resample every prediction onto one grid first (nearest neighbour), e.g. with "
                         "organsegbench.io.resample_to",
                )
            arrays.append(np.asarray(item.array))
        else:
            arrays.append(np.asarray(item))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise GeometryMismatchError(f"inputs have different shapes: {dict(zip(names, [a.shape for a in arrays], strict=True))}",
                                    hint="resample every prediction onto one grid first")
    return arrays, ref


def _harmonise(arrays: list[np.ndarray], labels: Sequence[dict[int, str]], names: list[str],
               common_only: bool) -> tuple[list[np.ndarray], dict[int, str], list[str]]:
    """Relabel every input onto one shared numbering of harmonised structure names; also return the structures
    left out because some input cannot segment them."""
    from organsegbench.labels import harmonised_labelmap  # lazy: labels is an optional layer for fusion

    relabelled, per_input = [], []
    for arr, lab in zip(arrays, labels, strict=True):
        new, new_labels = harmonised_labelmap(arr, lab)
        relabelled.append(np.asarray(new))
        per_input.append(new_labels)
    order: list[str] = []
    for nl in per_input:
        for v in sorted(nl):
            if nl[v] not in order:
                order.append(nl[v])
    if common_only:
        common = set.intersection(*(set(nl.values()) for nl in per_input))
        dropped = [n for n in order if n not in common]
        order = [n for n in order if n in common]
        if not order:
            raise ConfigError(
                f"the inputs share no structure after harmonisation ({', '.join(f'{m}: {sorted(set(nl.values()))}' for m, nl in zip(names, per_input, strict=True))})",
                hint="fuse predictions of the same structures, or pass common_only=False",
            )
    else:
        dropped = []
    value = {n: i for i, n in enumerate(order, start=1)}
    out = []
    for arr, nl in zip(relabelled, per_input, strict=True):
        table = np.zeros(max(nl, default=0) + 1, dtype=np.int32)
        for v, n in nl.items():
            table[v] = value.get(n, 0)
        out.append(table[arr.astype(np.int64)])
    return out, {i: n for n, i in value.items()}, dropped


def agreement_with(fused: np.ndarray, arr: np.ndarray) -> dict[str, float]:
    """Dice, sensitivity and specificity of one input's foreground against the fused foreground."""
    f, a = fused > 0, arr > 0
    tp = float(np.sum(f & a))
    fp = float(np.sum(~f & a))
    fn = float(np.sum(f & ~a))
    tn = float(np.sum(~f & ~a))
    return {
        "dice_vs_consensus": 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 1.0,
        "sensitivity_vs_consensus": tp / (tp + fn) if (tp + fn) else float("nan"),
        "specificity_vs_consensus": tn / (tn + fp) if (tn + fp) else float("nan"),
    }


def fuse(inputs: Sequence[Image | np.ndarray], method: str = "staple", names: Sequence[str] | None = None,
         labels: Sequence[dict[int, str]] | None = None, common_only: bool = True, **options: Any) -> FusionResult:
    """Fuse several models' segmentations of one case without training.

    Args:
        inputs: label maps (or, for ``mean``, probability maps in [0, 1]) on one grid — :class:`Image` or arrays.
        method: a name in :data:`FUSION_METHODS` (``mean``, ``majority``, ``staple``, ``multilabel_staple``).
        names: model names for the report (default ``model_1``…).
        labels: per input, label value -> structure name. When given and not all equal, every input is relabelled
            onto harmonised structure names first (:func:`organsegbench.labels.harmonised_labelmap`), and with
            ``common_only`` only structures present in every input's vocabulary are fused (others would count as
            votes for background from models that cannot segment them).
        options: method options, e.g. ``threshold`` for ``mean``/``staple``.

    Raises:
        UnknownNameError: unknown method. ConfigError: fewer than two inputs, or mismatched names/labels lengths.
        GeometryMismatchError: inputs on different grids.
    """
    if method not in FUSION_METHODS:
        raise unknown_name("fusion method", method, list(FUSION_METHODS))
    if len(inputs) < 2:
        raise ConfigError(f"fusion needs at least 2 segmentations; got {len(inputs)}",
                          hint="pass the predictions of two or more models for the same case")
    names = list(names) if names is not None else [f"model_{i + 1}" for i in range(len(inputs))]
    if len(names) != len(inputs) or len(set(names)) != len(names):
        raise ConfigError(f"need one unique name per input; got {names} for {len(inputs)} inputs",
                          hint="give each model a distinct name")
    arrays, ref = _as_arrays(inputs, names)
    meta: dict[str, Any] = {}
    fused_labels = None
    if labels is not None:
        if len(labels) != len(inputs):
            raise ConfigError(f"got {len(labels)} label dictionaries for {len(inputs)} inputs",
                              hint="pass one label dictionary per input (or none)")
        if all(dict(lab) == dict(labels[0]) for lab in labels):
            fused_labels = {int(k): str(v) for k, v in labels[0].items()}
        else:
            arrays, fused_labels, dropped = _harmonise(arrays, labels, names, common_only)
            meta["harmonised"] = True
            meta["dropped_structures_not_in_every_input"] = dropped
    fused, prob, est = FUSION_METHODS[method](arrays, **options)
    per_model = {}
    for i, name in enumerate(names):
        stats = dict(est.get(i, {}))
        if method != "mean" or np.issubdtype(arrays[i].dtype, np.integer) or arrays[i].dtype == bool:
            stats.update(agreement_with(fused, arrays[i] if arrays[i].dtype != float else arrays[i] >= 0.5))
        per_model[name] = stats
    meta.update({"method": method, "options": options, "models": names,
                 "provenance": provenance(step="fusion", method=method, options=options, models=names)})
    out = ref.with_array(fused.astype(np.uint16 if fused.max(initial=0) > 255 else np.uint8)) if ref else fused
    return FusionResult(out, fused_labels, prob, per_model, meta)
