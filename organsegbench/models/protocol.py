"""The ``Segmenter`` protocol every model adapter implements, its declared ``Capabilities``, the result type,
and the cancel token used to stop a run."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from organsegbench.errors import OrganSegBenchError

if TYPE_CHECKING:
    from collections.abc import Callable

    from organsegbench.io.image import Image
    from organsegbench.prompts import PromptSet

PromptKind = Literal["box", "point", "text", "none"]


@dataclass(frozen=True)
class Capabilities:
    """What a model can do, declared by its adapter (read by the CLI, the Slicer module and the benchmark).

    Attributes:
        name: registry name (``organsegbench segment --model NAME``).
        dims: ``"2d"`` (slice by slice) or ``"3d"`` (whole volume).
        prompt_kinds: accepted prompts; ``"none"`` means it runs without any (automatic models).
        modalities: imaging modalities it was trained for (``CT``, ``MR``, ``PET``).
        gpu: ``"required"``, ``"recommended"`` or ``"optional"``.
        code_licence: licence of the model's code.
        weights_licence: licence of its weights.
        weights: catalog names of usable checkpoints; the first is the default.
        vocabulary: label vocabulary of its outputs (automatic models) or ``None`` (prompted objects).
        package: the Python package it needs (checked at run time), or ``None``.
        description: one line for listings.
    """

    name: str
    dims: Literal["2d", "3d"]
    prompt_kinds: frozenset[str]
    modalities: tuple[str, ...] = ("CT", "MR")
    gpu: Literal["required", "recommended", "optional"] = "recommended"
    code_licence: str = "unknown"
    weights_licence: str = "unknown"
    weights: tuple[str, ...] = ()
    vocabulary: str | None = None
    package: str | None = None
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (prompt kinds sorted)."""
        return {**self.__dict__, "prompt_kinds": sorted(self.prompt_kinds), "modalities": list(self.modalities),
                "weights": list(self.weights)}


class RunCancelled(OrganSegBenchError):
    """A run was cancelled through its :class:`CancelToken`; partial outputs were removed."""


class CancelToken:
    """Thread-safe cancel flag checked by adapters between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the run to stop at the next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`RunCancelled` when cancelled."""
        if self._event.is_set():
            raise RunCancelled("the run was cancelled; partial outputs were removed")


@dataclass
class ModelResult:
    """A model's output on the input image's grid.

    Attributes:
        labelmap: label image (uint8/uint16) with the input image's geometry.
        labels: label value -> structure name (canonical names from the label vocabularies where known).
        provenance: model, weights sha256, prompts and protocol, seed, device, versions.
    """

    labelmap: Image
    labels: dict[int, str]
    provenance: dict[str, Any] = field(default_factory=dict)

    def write(self, path: str | Path) -> Path:
        """Write the label map (format from the suffix), its ``.segments.json`` sidecar (names and SNOMED codes, so
        evaluate/fuse/errormap/Slicer read the names back) and ``<path>.provenance.json``; atomic per file."""
        import json

        from organsegbench.io.segment_info import segments_from_names
        from organsegbench.io.segmentation import write_sidecar
        from organsegbench.models.base import write_labelmap

        path = Path(path)
        write_labelmap(self.labelmap, path)
        write_sidecar(path, segments_from_names({k: v for k, v in self.labels.items() if v}))
        side = path.with_name(path.name + ".provenance.json")
        tmp = side.with_name(side.name + ".tmp")
        tmp.write_text(json.dumps({"labels": {str(k): v for k, v in self.labels.items()}, **self.provenance},
                                  indent=1, default=str))
        tmp.replace(side)
        return path


@runtime_checkable
class Segmenter(Protocol):
    """What every model adapter offers."""

    capabilities: Capabilities

    def segment(self, image: Image, prompts: PromptSet | None = None, *, output: str = "prompted",
                slice_range: tuple[int, int] | None = None, out: str | Path | None = None,
                cancel: CancelToken | None = None, progress: Callable[[int, int], None] | None = None,
                roi: Any = None) -> ModelResult:
        """Segment ``image`` (prompts in its array-index frame) and return a label map on its grid;
        ``roi`` (a :class:`~organsegbench.prompts.Box3D`) restricts the run to that crop."""
        ...
