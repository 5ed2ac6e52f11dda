"""Coded concepts (SNOMED-CT and friends) as plain, hashable values, and coercion from DICOM-ish objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Code:
    """One coded concept, like a DICOM code sequence item.

    Attributes:
        value: the code value, e.g. ``"64033007"``.
        scheme: the coding scheme designator, e.g. ``"SCT"`` (SNOMED-CT).
        meaning: the code meaning, e.g. ``"Kidney"`` (informative; not used for matching).
    """

    value: str
    scheme: str
    meaning: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """``(scheme, value)``: what identifies the concept (the meaning is free text)."""
        return (self.scheme.upper(), self.value.strip())

    def to_dict(self) -> dict[str, str]:
        """``{"value", "scheme", "meaning"}`` (the CodedConcept-like form used in the JSON resources)."""
        return {"value": self.value, "scheme": self.scheme, "meaning": self.meaning}

    @classmethod
    def from_any(cls, obj: Any) -> Code | None:
        """Coerce a dict, a :class:`Code`, a highdicom ``CodedConcept``, a pydicom ``Code`` or a code-sequence
        ``Dataset`` into a :class:`Code`; ``None`` (or an empty sequence) gives ``None``.

        Raises:
            TypeError: when ``obj`` carries no recognisable code value and scheme.
        """
        if obj is None:
            return None
        if isinstance(obj, Code):
            return obj
        if isinstance(obj, Sequence) and not isinstance(obj, str):  # a DICOM sequence: its first item
            return cls.from_any(obj[0]) if len(obj) else None
        if isinstance(obj, Mapping):
            value = obj.get("value", obj.get("CodeValue", obj.get("code_value")))
            scheme = obj.get("scheme", obj.get("CodingSchemeDesignator", obj.get("scheme_designator")))
            meaning = obj.get("meaning", obj.get("CodeMeaning", obj.get("code_meaning", "")))
        else:
            value = _first_attr(obj, ("value", "CodeValue", "code_value"))
            scheme = _first_attr(obj, ("scheme_designator", "scheme", "CodingSchemeDesignator"))
            meaning = _first_attr(obj, ("meaning", "CodeMeaning", "code_meaning")) or ""
        if not value or not scheme:
            raise TypeError(f"cannot read a code (value + scheme) from {obj!r}")
        return cls(str(value), str(scheme), str(meaning))


def _first_attr(obj: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        val = getattr(obj, name, None)
        if val is not None and val != "":
            return val
    return None


def code_or_none(data: Mapping[str, str] | None) -> Code | None:
    """A :class:`Code` from a JSON code dict, or ``None``."""
    return None if data is None else Code(data["value"], data["scheme"], data.get("meaning", ""))


def match_key(type_code: Code | None, modifier: Code | None) -> tuple[str, str, str | None] | None:
    """The key used to match structures by code: type ``(scheme, value)`` plus the modifier value (laterality).

    The category is left out on purpose: producers disagree on it (``Tissue`` vs ``Anatomical Structure``) for the
    same anatomy.
    """
    if type_code is None:
        return None
    return (*type_code.key, modifier.key[1] if modifier is not None else None)
