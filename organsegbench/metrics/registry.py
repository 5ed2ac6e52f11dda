"""The metric registry: every metric name the engine knows, its unit, direction and single-mask function."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from organsegbench.errors import unknown_name
from organsegbench.metrics import distance, overlap, volume


@dataclass(frozen=True)
class MetricSpec:
    """Description of one metric.

    Attributes:
        name: registry name (column value in result tables).
        unit: ``"mm"``, ``"mL"`` or ``"fraction"``.
        kind: ``"overlap"``, ``"distance"`` or ``"volume"``.
        higher_is_better: direction (``None`` for signed or descriptive values such as volumes and RVD).
        description: one line, with the definition.
        function: the single-structure function taking ``(ref, pred, spacing_zyx)`` boolean masks.
    """

    name: str
    unit: str
    kind: str
    higher_is_better: bool | None
    description: str
    function: Callable[..., float]


def _no_spacing(f: Callable[..., float]) -> Callable[..., float]:
    def wrapped(ref: np.ndarray, pred: np.ndarray, spacing_zyx: Sequence[float] | None = None,
                **_: object) -> float:
        return f(ref, pred)
    wrapped.__doc__ = f.__doc__
    return wrapped


def _volume_of(which: str) -> Callable[..., float]:
    def wrapped(ref: np.ndarray, pred: np.ndarray, spacing_zyx: Sequence[float], **_: object) -> float:
        return volume.volume_ml(ref if which == "ref" else pred, spacing_zyx)
    wrapped.__doc__ = f"Volume of the {which} mask in mL."
    return wrapped


_SPECS = [
    MetricSpec("dsc", "fraction", "overlap", True, "Dice 2|R∩P|/(|R|+|P|)", _no_spacing(overlap.dice)),
    MetricSpec("iou", "fraction", "overlap", True, "Jaccard |R∩P|/|R∪P|", _no_spacing(overlap.iou)),
    MetricSpec("sensitivity", "fraction", "overlap", True, "recall |R∩P|/|R|", _no_spacing(overlap.sensitivity)),
    MetricSpec("precision", "fraction", "overlap", True, "PPV |R∩P|/|P|", _no_spacing(overlap.precision)),
    MetricSpec("hd", "mm", "distance", False, "Hausdorff distance between voxel surfaces (medpy)", distance.hd),
    MetricSpec("hd95", "mm", "distance", False, "95th percentile of both directed surface distances pooled (medpy)",
               distance.hd95),
    MetricSpec("assd", "mm", "distance", False, "mean of both directed surface distances pooled (medpy 0.5.2)",
               distance.assd),
    MetricSpec("asd_ref_to_pred", "mm", "distance", False, "mean distance reference surface -> prediction",
               distance.asd_ref_to_pred),
    MetricSpec("asd_pred_to_ref", "mm", "distance", False, "mean distance prediction surface -> reference",
               distance.asd_pred_to_ref),
    MetricSpec("nsd", "fraction", "distance", True, "normalised surface Dice at a tolerance in mm (Nikolov et al.)",
               distance.nsd),
    MetricSpec("volume_ref", "mL", "volume", None, "reference volume", _volume_of("ref")),
    MetricSpec("volume_pred", "mL", "volume", None, "prediction volume", _volume_of("pred")),
    MetricSpec("volume_error_rate", "fraction", "volume", False, "|V_ref - V_pred| / V_ref",
               _no_spacing(volume.volume_error_rate)),
    MetricSpec("rvd", "fraction", "volume", None, "relative volume difference (V_pred - V_ref) / V_ref",
               _no_spacing(volume.relative_volume_difference)),
]

#: name -> :class:`MetricSpec`, in the default reporting order
METRICS: dict[str, MetricSpec] = {s.name: s for s in _SPECS}

#: accepted alternative spellings -> registry name
ALIASES: dict[str, str] = {
    "dice": "dsc", "dc": "dsc", "jaccard": "iou", "jc": "iou", "recall": "sensitivity", "tpr": "sensitivity",
    "ppv": "precision", "hausdorff": "hd", "hd100": "hd", "asd": "asd_pred_to_ref", "surface_dice": "nsd",
    "nsd2": "nsd", "volume": "volume_pred", "ver": "volume_error_rate", "ravd": "rvd",
    "relative_volume_difference": "rvd",
}

#: metrics that need surfaces (everything else only needs voxel counts)
SURFACE_METRICS = frozenset({"hd", "hd95", "assd", "asd_ref_to_pred", "asd_pred_to_ref", "nsd"})


def resolve_metric(name: str) -> str:
    """Registry name for ``name`` (case-insensitive, aliases accepted); UnknownNameError with close matches."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in METRICS:
        raise unknown_name("metric", str(name), list(METRICS) + list(ALIASES))
    return key


def resolve_metrics(names: Iterable[str] | None) -> list[str]:
    """Registry names for ``names`` (``None`` = all), duplicates dropped, order kept."""
    if names is None:
        return list(METRICS)
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for n in names:
        key = resolve_metric(n)
        if key not in out:
            out.append(key)
    return out
