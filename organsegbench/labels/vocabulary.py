"""A label vocabulary: the label values of one model (or dataset) and the canonical structure behind each."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from organsegbench.labels.structures import Structure


@dataclass(frozen=True)
class Vocabulary:
    """Label values of one model with their canonical structures.

    Attributes:
        name: registry name (``total``, ``total_mr``, ``total_v1``, ``moose_clin_ct_organs``, ``organs`` or a user
            vocabulary's own name).
        labels: label value -> canonical structure name.
        source_names: label value -> the name as the model itself writes it (``bladder`` for MOOSE, ``left kidney``
            for text prompts); equal to ``labels`` for TotalSegmentator.
        title, modality, aliases: description, imaging modality, other registry names.
        source: where the label map comes from (package, version, location).
        path: the JSON file it was read from (``None`` for the built-in ones).
    """

    name: str
    labels: dict[int, str]
    source_names: dict[int, str]
    title: str = ""
    modality: str = ""
    aliases: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return iter(sorted(self.labels.items()))

    def __contains__(self, name: object) -> bool:
        from organsegbench.labels.registry import catalogue

        if isinstance(name, int):
            return name in self.labels
        return isinstance(name, str) and catalogue().find(name) in set(self.labels.values())

    @property
    def structure_names(self) -> list[str]:
        """Canonical names in label order."""
        return [self.labels[k] for k in sorted(self.labels)]

    def structure(self, name: str | int) -> Structure:
        """The :class:`Structure` for a label value or any spelling of a structure of this vocabulary.

        Raises:
            UnknownNameError: the name is unknown or not part of this vocabulary (lists close matches).
            KeyError: an integer label value that the vocabulary does not define.
        """
        from organsegbench.labels.registry import catalogue

        cat = catalogue()
        if isinstance(name, int):
            if name not in self.labels:
                raise KeyError(f"label {name} is not in vocabulary {self.name!r} (labels 1..{max(self.labels)})")
            return cat.structures[self.labels[name]]
        canon = cat.find(name)
        if canon is None or canon not in set(self.labels.values()):
            raise cat.unknown(name, within=self.labels.values(), kind=f"structure of vocabulary {self.name!r},")
        return cat.structures[canon]

    def label_of(self, name: str) -> int:
        """Label value of a structure (any spelling); the smallest one if several labels share it."""
        canon = self.structure(name).name
        return min(k for k, v in self.labels.items() if v == canon)

    def harmonised(self, level: str = "harmonised") -> dict[int, str]:
        """Label value -> harmonised structure name (see :func:`organsegbench.labels.harmonise`)."""
        from organsegbench.labels.harmonise import harmonise

        return harmonise(self.labels, level=level)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (schema ``vocabulary.schema.json``)."""
        return {
            "schema_version": 1,
            "name": self.name,
            "title": self.title,
            "modality": self.modality,
            "aliases": list(self.aliases),
            "source": dict(self.source),
            "labels": {str(k): {"name": self.source_names[k], "structure": v} for k, v in sorted(self.labels.items())},
        }
