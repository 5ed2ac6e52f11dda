"""Match structures across several label dictionaries (models with different vocabularies).

Used by the review module ("how many models have each structure") and by cohort evaluation and fusion to find
the structures two or more models share.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from organsegbench.errors import OrganSegBenchError
from organsegbench.labels.harmonise import _level_map, resolve_entry
from organsegbench.labels.registry import catalogue
from organsegbench.labels.structures import normalise


@dataclass(frozen=True)
class MatchRow:
    """One harmonised structure and which inputs have it.

    Attributes:
        structure: harmonised structure name (or, for unknown names, the name as given in snake_case).
        display_name: human-readable name.
        labels: per input, the label values that map to this structure (empty tuple where absent).
        matched_by: per input, ``"code"``, ``"name"``, ``"unknown"`` (name kept as given) or ``""`` where absent.
    """

    structure: str
    display_name: str
    labels: tuple[tuple[int, ...], ...]
    matched_by: tuple[str, ...]

    @property
    def present(self) -> tuple[bool, ...]:
        """Per input: does it have this structure?"""
        return tuple(bool(v) for v in self.labels)

    @property
    def count(self) -> int:
        """How many inputs have this structure."""
        return sum(self.present)


@dataclass(frozen=True)
class StructureMatch:
    """Table: harmonised structure -> which inputs have it (rows sorted by count, then first appearance)."""

    inputs: tuple[str, ...]
    rows: tuple[MatchRow, ...]
    level: str

    def __iter__(self) -> Iterator[MatchRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, name: str) -> MatchRow:
        """The row of a structure given by any spelling (harmonised at this table's level)."""
        canon = catalogue().find(name)
        target = _level_map(self.level).get(canon, canon) if canon else normalise(name).replace(" ", "_")
        for r in self.rows:
            if r.structure == target:
                return r
        raise catalogue().unknown(name, within=[r.structure for r in self.rows], kind="structure in this table,")

    def common(self) -> list[str]:
        """Structures every input has."""
        return [r.structure for r in self.rows if r.count == len(self.inputs)]

    def label_pairs(self, i: int, j: int) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
        """For inputs ``i`` and ``j``: structure -> (labels in i, labels in j), for structures both have."""
        return {r.structure: (r.labels[i], r.labels[j]) for r in self.rows if r.labels[i] and r.labels[j]}

    def to_frame(self) -> Any:
        """A pandas DataFrame: structure, display_name, count, one boolean column per input."""
        import pandas as pd

        data = [{"structure": r.structure, "display_name": r.display_name, "count": r.count,
                 **{name: p for name, p in zip(self.inputs, r.present, strict=True)}} for r in self.rows]
        return pd.DataFrame(data, columns=["structure", "display_name", "count", *self.inputs])


def match_structures(*label_dicts: Mapping[int, Any], names: Sequence[str] | None = None,
                     level: str = "harmonised") -> StructureMatch:
    """Which inputs have each harmonised structure.

    Each entry is matched by SNOMED-CT code first (type + laterality modifier, including other tools' codings such
    as MOOSE's pre-coordinated "Left kidney structure"), then by name (any spelling); unknown names are kept as
    given, so equal custom names across inputs still match.

    Args:
        label_dicts: one label dictionary per model: label value -> name or segment description with codes.
        names: display names of the inputs (default ``input1``, ``input2``, ...).
        level: harmonisation level (``harmonised`` default, ``canonical``, ``grouped``).

    Raises:
        OrganSegBenchError: no inputs, or ``names`` of the wrong length.
        UnknownNameError: unknown level.
    """
    if not label_dicts:
        raise OrganSegBenchError("match_structures needs at least one label dictionary", None)
    names = tuple(names) if names is not None else tuple(f"input{i + 1}" for i in range(len(label_dicts)))
    if len(names) != len(label_dicts):
        raise OrganSegBenchError(f"{len(names)} names for {len(label_dicts)} label dictionaries",
                                 "give one name per label dictionary")
    mapping = _level_map(level)
    cat = catalogue()
    n = len(label_dicts)
    found: dict[str, list[list[int]]] = {}
    how: dict[str, list[str]] = {}
    display: dict[str, str] = {}
    for i, labels in enumerate(label_dicts):
        for value in sorted(labels):
            canon, method, text = resolve_entry(labels[value])
            if canon is None:
                key = normalise(text).replace(" ", "_")
                display.setdefault(key, text)
            else:
                key = mapping.get(canon, canon)
                display.setdefault(key, cat.structures[key].display_name if key in cat.structures else key)
            found.setdefault(key, [[] for _ in range(n)])[i].append(int(value))
            methods = how.setdefault(key, [""] * n)
            if not methods[i]:
                methods[i] = method
    order = list(found)
    rows = [MatchRow(k, display[k], tuple(tuple(v) for v in found[k]), tuple(how[k])) for k in order]
    rows.sort(key=lambda r: (-r.count, order.index(r.structure)))
    return StructureMatch(inputs=names, rows=tuple(rows), level=level)
