"""Per-segment metadata (:class:`SegmentInfo`) and naming label values from a label vocabulary.

Codes are DICOM coded concepts stored as dicts ``{"value", "scheme", "meaning"}``. Vocabularies come from
:mod:`organsegbench.labels` (imported lazily, so plain IO works without it) or any object with ``labels``
(value -> name) and ``structure(name)`` (codes and colour).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: DICOM codes used when a segment has none (SNOMED CT "Tissue" category, "Anatomical structure" type)
DEFAULT_CATEGORY = {"value": "85756007", "scheme": "SCT", "meaning": "Tissue"}
DEFAULT_TYPE = {"value": "91723000", "scheme": "SCT", "meaning": "Anatomical structure"}


@dataclass
class SegmentInfo:
    """Metadata of one segment. Codes are dicts ``{"value", "scheme", "meaning"}`` (DICOM coded concepts).

    Attributes:
        label: value of the segment in the label map (> 0).
        name: segment name (DICOM SegmentLabel, Slicer segment name, vocabulary structure name).
        category, type: SNOMED CT (or DCM) segmented property category and type; None when unknown.
        type_modifier, anatomic_region: optional further codes.
        color: display colour RGB 0..255.
        algorithm_name, algorithm_type: how the segment was made (AUTOMATIC, SEMIAUTOMATIC, MANUAL).
        metadata: anything else (tracking id, source segment number, overlap partners).
    """

    label: int
    name: str
    category: dict[str, str] | None = None
    type: dict[str, str] | None = None
    type_modifier: dict[str, str] | None = None
    anatomic_region: dict[str, str] | None = None
    color: tuple[int, int, int] | None = None
    algorithm_name: str | None = None
    algorithm_type: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["color"] = list(self.color) if self.color is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmentInfo:
        """Inverse of :meth:`to_dict` (unknown keys go to ``metadata``)."""
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in d.items() if k in known}
        extra = {k: v for k, v in d.items() if k not in known}
        if kwargs.get("color") is not None:
            kwargs["color"] = tuple(int(c) for c in kwargs["color"])
        kwargs["label"] = int(kwargs["label"])
        kwargs.setdefault("name", f"label_{kwargs['label']}")
        info = cls(**kwargs)
        info.metadata.update(extra)
        return info


# ------------------------------------------------------------------------------------------------ vocabulary
def _code(obj: Any) -> dict[str, str] | None:
    """Turn a coded concept (dict, highdicom/pydicom Code, or tuple) into ``{"value", "scheme", "meaning"}``."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        value = obj.get("value", obj.get("code", obj.get("CodeValue")))
        scheme = obj.get("scheme", obj.get("scheme_designator", obj.get("CodingSchemeDesignator", "SCT")))
        meaning = obj.get("meaning", obj.get("CodeMeaning", ""))
    elif isinstance(obj, list | tuple) and len(obj) == 3:
        value, scheme, meaning = obj
    else:
        value = getattr(obj, "value", None)
        scheme = getattr(obj, "scheme_designator", None) or getattr(obj, "scheme", None) or "SCT"
        meaning = getattr(obj, "meaning", "")
    if value in (None, ""):
        return None
    return {"value": str(value), "scheme": str(scheme), "meaning": str(meaning)}


def _structure_attr(structure: Any, *names: str) -> Any:
    for n in names:
        v = structure.get(n) if isinstance(structure, dict) else getattr(structure, n, None)
        if v is not None:
            return v
    return None


def segment_info_from_vocabulary(label: int, name: str, vocabulary: Any) -> SegmentInfo:
    """A :class:`SegmentInfo` with codes and colour from ``vocabulary.structure(name)`` where it has them."""
    info = SegmentInfo(label=label, name=name)
    try:
        structure = vocabulary.structure(name)
    except Exception as exc:  # an unknown structure only costs the codes, never the segment
        log.debug("no structure entry for %r: %s", name, exc)
        return info
    info.category = _code(_structure_attr(structure, "category", "snomed_category", "category_code"))
    info.type = _code(_structure_attr(structure, "type", "snomed_type", "type_code", "snomed"))
    info.type_modifier = _code(_structure_attr(structure, "type_modifier", "modifier", "snomed_modifier"))
    info.anatomic_region = _code(_structure_attr(structure, "anatomic_region", "region"))
    color = _structure_attr(structure, "color", "colour", "rgb")
    if color is not None and len(color) >= 3:
        rgb = [float(c) for c in list(color)[:3]]
        if max(rgb) <= 1.0 and any(c % 1 for c in rgb):
            rgb = [c * 255 for c in rgb]
        info.color = tuple(int(round(c)) for c in rgb)  # type: ignore[assignment]
    display = _structure_attr(structure, "display_name", "display")
    if display:
        info.metadata["display_name"] = str(display)
    return info


class _Catalogue:
    """The structure catalogue seen as a vocabulary (``structure(name)``), to code names from any model."""

    name = "catalogue"

    @staticmethod
    def structure(name: str) -> Any:
        from organsegbench.labels import get_structure

        return get_structure(name)


def segments_from_names(labels: dict[int, str]) -> dict[int, SegmentInfo]:
    """Segment metadata for ``{label value: structure name}``: codes and colours where the structure catalogue
    knows the name (any spelling), the bare name otherwise."""
    return {int(k): segment_info_from_vocabulary(int(k), str(v), _Catalogue()) for k, v in labels.items()}


def load_vocabulary(vocabulary: Any) -> Any:
    if vocabulary is None or not isinstance(vocabulary, str):
        return vocabulary
    from organsegbench.labels import get_vocabulary  # lazy: the labels package is optional for plain IO

    return get_vocabulary(vocabulary)


def name_segments(labels: list[int], vocabulary: Any = None, known: dict[int, SegmentInfo] | None = None
                  ) -> dict[int, SegmentInfo]:
    """Segment metadata for ``labels``: ``known`` entries first, then the vocabulary, else ``label_<n>``.

    A ``known`` entry that is only the ``label_<n>`` placeholder (no codes; e.g. a sidecar written when converting
    an unnamed label map) gives way to the vocabulary's entry for that label."""
    vocab = load_vocabulary(vocabulary)
    vocab_labels: dict[int, str] = dict(getattr(vocab, "labels", {}) or {}) if vocab is not None else {}
    out: dict[int, SegmentInfo] = {}
    missing = []
    for label in labels:
        placeholder = bool(known and label in known and known[label].name == f"label_{label}"
                           and known[label].type is None)
        if known and label in known and not (placeholder and label in vocab_labels):
            info = known[label]
            if vocab is not None and info.type is None:
                filled = segment_info_from_vocabulary(label, info.name, vocab)
                info.category, info.type = filled.category, filled.type
                info.color = info.color or filled.color
        elif label in vocab_labels:
            info = segment_info_from_vocabulary(label, vocab_labels[label], vocab)
        else:
            info = SegmentInfo(label=label, name=f"label_{label}")
            if vocab is not None:
                missing.append(label)
        out[label] = info
    if missing:
        log.warning("label values %s are not in vocabulary %r; named label_<n>", missing,
                    getattr(vocab, "name", vocabulary))
    return out
