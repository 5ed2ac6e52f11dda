"""Harmonisation: map label values of any vocabulary onto shared structures so models compare structure by structure.

Levels (``resources/labels/harmonisation.json``, each rule documented there):

* ``canonical``: no merging.
* ``harmonised`` (default): v1 heart chambers + myocardium (+ v2's left atrial appendage) -> ``heart``; lung lobes ->
  ``lung_left`` / ``lung_right``; MOOSE thyroid lobes -> ``thyroid_gland``; v2 kidney cysts -> their kidney; v2
  ``vertebrae_S1`` -> ``sacrum``. ``pulmonary_artery`` stays separate.
* ``grouped``: ``harmonised`` plus single vertebrae -> ``vertebrae`` and single ribs -> ``ribs``.

An entry of a label dictionary may be a name (any spelling) or a segment description carrying SNOMED-CT codes (a
mapping or an object with a name/label and type/modifier codes, e.g. a DICOM SEG segment); codes are tried first,
then the name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

from organsegbench.errors import ConfigError, OrganSegBenchError, unknown_name
from organsegbench.labels.codes import Code
from organsegbench.labels.registry import catalogue, harmonisation_document
from organsegbench.labels.structures import normalise

_NAME_FIELDS = ("structure", "name", "segment_label", "label_name", "SegmentLabel", "SegmentDescription",
                "description")
_TYPE_FIELDS = ("type", "type_code", "property_type", "segmented_property_type", "SegmentedPropertyTypeCodeSequence")
_MODIFIER_FIELDS = ("modifier", "type_modifier", "property_type_modifier", "segmented_property_type_modifier",
                    "SegmentedPropertyTypeModifierCodeSequence")


@cache
def _levels() -> dict[str, dict[str, str]]:
    """Level name -> complete map canonical -> target (base levels applied first); checked against the catalogue."""
    doc = harmonisation_document()
    cat = catalogue()
    raw = doc["levels"]
    resolved: dict[str, dict[str, str]] = {}

    def build(level: str, seen: tuple[str, ...] = ()) -> dict[str, str]:
        if level in resolved:
            return resolved[level]
        if level in seen:
            raise ConfigError(f"harmonisation.json: level {level!r} has a cyclic 'base'", "fix the 'base' entries")
        spec = raw[level]
        base = build(spec["base"], (*seen, level)) if spec.get("base") else {}
        for src, dst in spec["map"].items():
            for n in (src, dst):
                if n not in cat.structures:
                    raise ConfigError(f"harmonisation.json: level {level!r} names unknown structure {n!r}",
                                      "use canonical names from structures.json")
        out = dict(base)
        for src, dst in spec["map"].items():
            out[src] = spec["map"].get(dst, dst)
        # a base rule whose target is re-mapped at this level follows it (e.g. lobe -> lung_left -> lungs)
        for src, dst in list(out.items()):
            out[src] = spec["map"].get(dst, dst)
        resolved[level] = out
        return out

    for level in raw:
        build(level)
    if doc["default_level"] not in raw:
        raise ConfigError(f"harmonisation.json: default level {doc['default_level']!r} is not defined", None)
    return resolved


def harmonisation_levels() -> list[str]:
    """Names of the harmonisation levels (``canonical``, ``harmonised``, ``grouped``)."""
    return list(_levels())


def harmonisation_notes(level: str = "harmonised") -> dict[str, str]:
    """The documented reasons of a level's rules (target structure -> why)."""
    _level_map(level)
    return dict(harmonisation_document()["levels"][level].get("notes", {}))


def _level_map(level: str) -> dict[str, str]:
    levels = _levels()
    if level not in levels:
        raise unknown_name("harmonisation level", level, list(levels))
    return levels[level]


def harmonised_name(name: str, level: str = "harmonised") -> str:
    """Harmonised structure name of any spelling of a structure (``heart_atrium_left`` -> ``heart``).

    Raises:
        UnknownNameError: unknown structure or level (lists close matches).
    """
    canon = catalogue().resolve(name)
    return _level_map(level).get(canon, canon)


def _get(entry: Any, fields: tuple[str, ...]) -> Any:
    for f in fields:
        val = entry.get(f) if isinstance(entry, Mapping) else getattr(entry, f, None)
        if val is not None and val != "" and not callable(val):
            return val
    return None


def resolve_entry(entry: Any) -> tuple[str | None, str, str]:
    """Canonical structure of one label-dictionary entry.

    Returns:
        ``(canonical name or None, how: "code" | "name" | "unknown", the entry's own name or code text)``.
    """
    if isinstance(entry, str):
        return catalogue().find(entry), ("name" if catalogue().find(entry) else "unknown"), entry
    cat = catalogue()
    type_code = modifier = None
    try:
        raw_type = _get(entry, _TYPE_FIELDS)
        type_code = Code.from_any(raw_type)
        raw_modifier = _get(entry, _MODIFIER_FIELDS)
        if raw_modifier is None and raw_type is not None:  # DICOM nests the modifier inside the type code item
            item = raw_type[0] if isinstance(raw_type, Sequence) and len(raw_type) else raw_type
            raw_modifier = getattr(item, "SegmentedPropertyTypeModifierCodeSequence", None)
        modifier = Code.from_any(raw_modifier)
    except TypeError:
        type_code = None
    if type_code is not None:
        canon = cat.by_code(type_code, modifier)
        if canon is not None:
            return canon, "code", str(_get(entry, _NAME_FIELDS) or type_code.meaning)
    name = _get(entry, _NAME_FIELDS)
    candidates = [str(name)] if name is not None else []
    if type_code is not None:  # e.g. a legacy SRT code whose meaning is a plain name ("Liver")
        side = f"{modifier.meaning} " if modifier is not None and modifier.meaning else ""
        candidates.append(f"{side}{type_code.meaning}")
    for cand in candidates:
        canon = cat.find(cand)
        if canon is not None:
            return canon, "name", cand
    return None, "unknown", candidates[0] if candidates else repr(entry)


def harmonise(labels: Mapping[int, Any], level: str = "harmonised", strict: bool = True) -> dict[int, str]:
    """Map each label value to its harmonised structure name.

    Args:
        labels: label value -> structure name (any spelling) or segment description with codes.
        level: ``canonical``, ``harmonised`` (default) or ``grouped``.
        strict: when True an unknown name raises; when False it is kept as given (normalised to snake_case) so
            identical custom names still match each other.

    Raises:
        UnknownNameError: unknown structure (strict) or level, listing close matches.
    """
    mapping = _level_map(level)
    out: dict[int, str] = {}
    for value, entry in labels.items():
        canon, _how, text = resolve_entry(entry)
        if canon is None:
            if strict:
                err = catalogue().unknown(text)
                raise type(err)(f"label {value}: {err.message}", err.hint)
            out[int(value)] = normalise(text).replace(" ", "_")
        else:
            out[int(value)] = mapping.get(canon, canon)
    return out


def harmonised_labelmap(array: Any, labels: Mapping[int, Any], level: str = "harmonised",
                        strict: bool = True) -> tuple[Any, dict[int, str]]:
    """Relabel a label map onto harmonised structures with one lookup table (no per-voxel Python loop).

    New label values are 1..K, ordered by the smallest source label of each harmonised structure; 0 stays
    background. Every structure of ``labels`` gets a value even when absent from the array, so maps of different
    cases relabelled with the same ``labels`` share values.

    Args:
        array: integer label map (numpy array, or an ``Image``, which is returned as an ``Image`` on the same grid).
        labels: label value -> structure name or segment description (see :func:`harmonise`).
        level, strict: as in :func:`harmonise`.

    Returns:
        ``(relabelled array or Image, new label value -> harmonised structure name)``.

    Raises:
        OrganSegBenchError: non-integer or negative values, or values missing from ``labels`` (named).
    """
    image = array if hasattr(array, "with_array") and hasattr(array, "array") else None
    arr = np.asarray(image.array if image is not None else array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise OrganSegBenchError(f"label map has dtype {arr.dtype}; label values must be integers",
                                 "round and cast it first, e.g. np.rint(a).astype(np.int32)")
    harm = harmonise(labels, level=level, strict=strict)
    if 0 in harm:
        raise OrganSegBenchError(f"label 0 is named {harm[0]!r}, but 0 is background",
                                 "drop label 0 from the label dictionary")
    if negative := sorted(v for v in harm if v < 0):
        raise OrganSegBenchError(f"the label dictionary names negative label values {negative}",
                                 "label values must be > 0")
    order: list[str] = []
    for value in sorted(harm):
        if harm[value] not in order:
            order.append(harm[value])
    new_values = {name: i for i, name in enumerate(order, start=1)}
    out_dtype = np.uint8 if len(order) < 255 else np.uint16 if len(order) < 65535 else np.uint32
    result = _apply_lookup(arr, {v: new_values[n] for v, n in harm.items()}, out_dtype)
    new_labels = {v: k for k, v in new_values.items()}
    if image is not None:
        return image.with_array(result), new_labels
    return result, new_labels


def _apply_lookup(arr: np.ndarray, table: dict[int, int], out_dtype: type) -> np.ndarray:
    """``table[arr]`` in one vectorised pass; 0 stays 0; values missing from ``table`` raise (named)."""
    if arr.size == 0:
        return np.zeros(arr.shape, dtype=out_dtype)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise OrganSegBenchError(f"label map holds negative value {lo}", "label values must be >= 0")
    sentinel = np.iinfo(out_dtype).max  # marks values the dictionary does not name
    if hi < 2**24:  # dense lookup table: one gather over the array, no sort
        lut = np.full(max(hi, *table, 0) + 1, sentinel, dtype=out_dtype)
        lut[0] = 0
        for value, new in table.items():
            lut[value] = new
        result = lut[arr]
        # the sentinel is the dtype's maximum, so max() finds it without a full-size mask
        missing = np.unique(arr[result == sentinel]) if result.max() == sentinel else np.zeros(0, arr.dtype)
    else:  # sparse huge label values: sort-based
        uniq, inverse = np.unique(arr, return_inverse=True)
        mapped = np.array([0 if u == 0 else table.get(int(u), sentinel) for u in uniq], dtype=out_dtype)
        missing = uniq[mapped == sentinel]
        result = mapped[inverse].reshape(arr.shape)
    if missing.size:
        raise OrganSegBenchError(
            f"label map holds values {[int(v) for v in missing[:20]]} that the label dictionary does not name",
            "pass the vocabulary the map was made with (e.g. get_vocabulary('total_v1').labels)")
    return result
