"""Canonical anatomical structures: names, display names, synonyms, SNOMED-CT codes and colours.

The catalogue is read from ``organsegbench/resources/labels/structures.json`` (built by
``tools/build_vocabularies.py`` from the TotalSegmentator and moosez packages; see that script for every source).
Canonical names follow TotalSegmentator v2 (snake_case, e.g. ``kidney_left``, ``lung_upper_lobe_left``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from organsegbench.errors import ConfigError, UnknownNameError, close_matches
from organsegbench.labels.codes import Code, code_or_none, match_key

_SEPARATORS = re.compile(r"[\s_\-/]+")


def normalise(name: str) -> str:
    """Lookup key of a name: case-folded, with runs of spaces, ``_``, ``-`` and ``/`` turned into one space."""
    return _SEPARATORS.sub(" ", str(name).strip().casefold()).strip()


@dataclass(frozen=True)
class Structure:
    """One canonical anatomical structure.

    Attributes:
        name: canonical snake_case name (TotalSegmentator v2 naming), e.g. ``kidney_left``.
        display_name: human-readable name, e.g. ``Left kidney``.
        synonyms: other spellings that resolve to this structure (v1/MOOSE names, plain names, abbreviations).
        category, type, modifier: SNOMED-CT segmented property category / type / type modifier (laterality), or
            ``None`` where no source gives a code.
        alt_codes: other (type, modifier) codings of the same anatomy used by other tools (e.g. MOOSE's
            pre-coordinated "Left kidney structure"); used only for matching.
        color: RGB 0-255.
        code_source, color_source: where the codes and the colour come from.
    """

    name: str
    display_name: str
    synonyms: tuple[str, ...] = ()
    category: Code | None = None
    type: Code | None = None
    modifier: Code | None = None
    alt_codes: tuple[tuple[Code, Code | None], ...] = ()
    color: tuple[int, int, int] = (128, 128, 128)
    code_source: str | None = None
    color_source: str | None = None

    @property
    def has_code(self) -> bool:
        """True when the structure has a SNOMED-CT type code."""
        return self.type is not None

    @property
    def color_float(self) -> tuple[float, float, float]:
        """Colour as floats in 0..1 (the form Slicer and VTK use)."""
        return tuple(c / 255.0 for c in self.color)  # type: ignore[return-value]

    def match_keys(self) -> list[tuple[str, str, str | None]]:
        """Every code key (primary first, then alternatives) that identifies this structure."""
        keys = [match_key(self.type, self.modifier)] + [match_key(t, m) for t, m in self.alt_codes]
        return [k for k in keys if k is not None]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as in ``structures.json``)."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "synonyms": list(self.synonyms),
            "category": self.category.to_dict() if self.category else None,
            "type": self.type.to_dict() if self.type else None,
            "modifier": self.modifier.to_dict() if self.modifier else None,
            "code_source": self.code_source,
            "alt_codes": [
                {"type": t.to_dict(), "modifier": m.to_dict() if m else None} for t, m in self.alt_codes
            ],
            "color": list(self.color),
            "color_source": self.color_source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Structure:
        """Build from the JSON form (already schema-checked)."""
        name = data["name"]
        return cls(
            name=name,
            display_name=data.get("display_name") or name.replace("_", " ").capitalize(),
            synonyms=tuple(data.get("synonyms", ())),
            category=code_or_none(data.get("category")),
            type=code_or_none(data.get("type")),
            modifier=code_or_none(data.get("modifier")),
            alt_codes=tuple(
                (code_or_none(a["type"]), code_or_none(a.get("modifier")))  # type: ignore[misc]
                for a in data.get("alt_codes", ())
            ),
            color=tuple(data.get("color", (128, 128, 128))),  # type: ignore[arg-type]
            code_source=data.get("code_source"),
            color_source=data.get("color_source"),
        )


@dataclass
class Catalogue:
    """All known structures with a synonym index and a code index.

    Every spelling (canonical name, display name, synonym; compared after :func:`normalise`) must point to exactly
    one structure; adding a structure that would make a spelling ambiguous raises :class:`ConfigError`.
    Codes shared by several structures (e.g. TotalSegmentator codes both kidney cysts as "Cyst" without laterality)
    are kept out of the code index and listed in :attr:`ambiguous_codes`.
    """

    structures: dict[str, Structure] = field(default_factory=dict)
    _names: dict[str, str] = field(default_factory=dict)
    _codes: dict[tuple[str, str, str | None], set[str]] = field(default_factory=dict)

    def add(self, structures: Iterable[Structure], origin: str = "structures.json") -> None:
        """Add structures atomically (nothing is added when one of them conflicts)."""
        new_names: dict[str, str] = {}
        batch = list(structures)
        for s in batch:
            if s.name in self.structures or any(s.name == b.name for b in batch if b is not s):
                raise ConfigError(f"{origin}: structure {s.name!r} is defined twice",
                                  "use the existing canonical name in 'labels', or rename the new structure")
            for spelling in (s.name, s.display_name, *s.synonyms):
                key = normalise(spelling)
                owner = self._names.get(key) or new_names.get(key)
                if owner is not None and owner != s.name:
                    raise ConfigError(
                        f"{origin}: the name {spelling!r} of structure {s.name!r} already means {owner!r}",
                        "remove that synonym or use the existing structure")
                new_names[key] = s.name
        self._names.update(new_names)
        for s in batch:
            self.structures[s.name] = s
            for key in s.match_keys():
                self._codes.setdefault(key, set()).add(s.name)

    @property
    def ambiguous_codes(self) -> dict[tuple[str, str, str | None], set[str]]:
        """Code keys that several structures share (not used for matching)."""
        return {k: v for k, v in self._codes.items() if len(v) > 1}

    def spellings(self) -> dict[str, str]:
        """Normalised spelling -> canonical name."""
        return dict(self._names)

    def resolve(self, name: str) -> str:
        """Canonical name of ``name`` (any spelling, case-insensitive).

        Raises:
            UnknownNameError: listing close matches.
        """
        hit = self._names.get(normalise(name))
        if hit is not None:
            return hit
        raise self.unknown(name)

    def find(self, name: str) -> str | None:
        """Like :meth:`resolve` but returns ``None`` for unknown names."""
        return self._names.get(normalise(name))

    def by_code(self, type_code: Code | None, modifier: Code | None = None) -> str | None:
        """Canonical name of the structure coded ``type_code`` (+ ``modifier``), or ``None`` (unknown/ambiguous)."""
        key = match_key(type_code, modifier)
        owners = self._codes.get(key) if key else None
        return next(iter(owners)) if owners and len(owners) == 1 else None

    def unknown(self, name: str, within: Iterable[str] | None = None, kind: str = "structure") -> UnknownNameError:
        """An :class:`UnknownNameError` for ``name`` listing close canonical names (optionally among ``within``)."""
        allowed = set(within) if within is not None else None
        keys = [k for k, v in self._names.items() if allowed is None or v in allowed]
        hits: list[str] = []
        for key in close_matches(normalise(name), keys, n=8):
            canon = self._names[key]
            if canon not in hits:
                hits.append(canon)
        if hits:
            hint = "did you mean: " + ", ".join(hits[:5]) + "?"
        elif allowed is not None and len(allowed) <= 30:
            hint = "known structures here: " + ", ".join(sorted(allowed))
        else:
            hint = "list the known names with organsegbench.labels.list_structures()"
        return UnknownNameError(f"unknown {kind} {name!r}", hint)
