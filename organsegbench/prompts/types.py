"""Prompt types: 2D boxes and points on slices, 3D boxes, text, and a JSON-serialisable :class:`PromptSet`.

Coordinates are **voxel indices of the image array** as given to the model (``array[k, j, i]``):
``slice`` is ``k`` (array axis 0), ``x`` is the column ``i`` (axis 2) and ``y`` is the row ``j`` (axis 1).
Boxes are inclusive index extents ``(x0, y0, x1, y1)``: a one-voxel object has ``x0 == x1``. This is the
convention of SAM's ``box`` argument (XYXY in pixel coordinates) applied to array indices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from organsegbench.errors import InputFileError, OrganSegBenchError

PROMPT_FILE_VERSION = 1


@dataclass(frozen=True)
class Box2D:
    """A box on one slice: inclusive voxel index extent ``x0..x1`` (columns) and ``y0..y1`` (rows).

    ``label`` is the output label value of the object the box prompts; ``name`` its structure name.
    """

    slice: int
    x0: float
    y0: float
    x1: float
    y1: float
    label: int = 1
    name: str | None = None

    def __post_init__(self) -> None:
        if self.x1 < self.x0 or self.y1 < self.y0:
            raise OrganSegBenchError(
                f"box on slice {self.slice} has x1<x0 or y1<y0: ({self.x0}, {self.y0}, {self.x1}, {self.y1})",
                "give boxes as x0,y0,x1,y1 with x0<=x1 and y0<=y1 (column, row voxel indices)",
            )

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        """The box as ``(x0, y0, x1, y1)``."""
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True)
class Point2D:
    """A click on one slice at column ``x``, row ``y``; ``positive`` False marks background."""

    slice: int
    x: float
    y: float
    positive: bool = True
    label: int = 1
    name: str | None = None


@dataclass(frozen=True)
class Box3D:
    """A 3D box: inclusive voxel index extents along k (slices), j (rows) and i (columns)."""

    k0: int
    k1: int
    y0: float
    y1: float
    x0: float
    x1: float
    label: int = 1
    name: str | None = None

    def to_slices(self, slices: list[int] | None = None) -> list[Box2D]:
        """One :class:`Box2D` per slice ``k0..k1`` (or per given slice), all with the in-plane extent."""
        ks = range(int(self.k0), int(self.k1) + 1) if slices is None else slices
        return [Box2D(int(k), self.x0, self.y0, self.x1, self.y1, self.label, self.name) for k in ks]


def clip_box(box: Box2D, shape_zyx: tuple[int, int, int]) -> Box2D:
    """Clip a box to the image; raise when it lies wholly outside (naming box and image size).

    A box partly outside is clipped to the grid; the caller records that it was clipped.
    """
    nz, ny, nx = shape_zyx
    if not 0 <= box.slice < nz:
        raise OrganSegBenchError(
            f"box slice {box.slice} is outside the image (slices 0..{nz - 1})",
            "give a slice index inside the image (array axis 0 of the input file)",
        )
    if box.x1 < 0 or box.y1 < 0 or box.x0 > nx - 1 or box.y0 > ny - 1:
        raise OrganSegBenchError(
            f"box {box.xyxy} on slice {box.slice} lies wholly outside the image "
            f"(columns 0..{nx - 1}, rows 0..{ny - 1})",
            "boxes are x0,y0,x1,y1 voxel indices (column, row) of the input array; check the order and frame",
        )
    return replace(box, x0=max(0.0, box.x0), y0=max(0.0, box.y0),
                   x1=min(float(nx - 1), box.x1), y1=min(float(ny - 1), box.y1))


def box_is_clipped(box: Box2D, shape_zyx: tuple[int, int, int]) -> bool:
    """True when :func:`clip_box` would change the box."""
    return clip_box(box, shape_zyx) != box


@dataclass
class PromptSet:
    """All prompts of one run plus the protocol that produced them (recorded in the provenance)."""

    boxes: list[Box2D] = field(default_factory=list)
    points: list[Point2D] = field(default_factory=list)
    boxes3d: list[Box3D] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    image_shape: tuple[int, int, int] | None = None

    # ------------------------------------------------------------------------------------------- queries
    @property
    def kinds(self) -> set[str]:
        """Prompt kinds present: subset of ``{"box", "point", "text"}`` (3D boxes count as ``box``)."""
        out = set()
        if self.boxes or self.boxes3d:
            out.add("box")
        if self.points:
            out.add("point")
        if self.text:
            out.add("text")
        return out

    def is_empty(self) -> bool:
        """True when there is no prompt at all."""
        return not self.kinds

    def slice_boxes(self) -> list[Box2D]:
        """All 2D boxes, with 3D boxes expanded to one box per slice of their extent."""
        out = list(self.boxes)
        for b in self.boxes3d:
            out.extend(b.to_slices())
        return out

    def slices(self) -> list[int]:
        """Sorted slice indices that carry a 2D prompt (boxes, expanded 3D boxes, points)."""
        return sorted({b.slice for b in self.slice_boxes()} | {p.slice for p in self.points})

    def labels(self) -> dict[int, str | None]:
        """Output label value -> structure name over all box/point prompts."""
        out: dict[int, str | None] = {}
        for p in [*self.slice_boxes(), *self.points]:
            if out.get(p.label) is None:
                out[p.label] = p.name
        return out

    def for_slice(self, k: int) -> tuple[list[Box2D], list[Point2D]]:
        """Boxes and points of slice ``k``."""
        return ([b for b in self.slice_boxes() if b.slice == k], [p for p in self.points if p.slice == k])

    # ------------------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the prompt file format, version :data:`PROMPT_FILE_VERSION`)."""
        return {
            "version": PROMPT_FILE_VERSION,
            "frame": "array index (k=slice, y=row j, x=column i), boxes inclusive",
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "protocol": self.protocol,
            "boxes": [asdict(b) for b in self.boxes],
            "boxes3d": [asdict(b) for b in self.boxes3d],
            "points": [asdict(p) for p in self.points],
            "text": list(self.text),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "prompt data") -> PromptSet:
        """Parse the prompt file format; errors name the bad entry."""
        if not isinstance(data, dict):
            raise InputFileError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = data.get("version", PROMPT_FILE_VERSION)
        if version != PROMPT_FILE_VERSION:
            raise InputFileError(f"{source}: prompt file version {version} is not supported",
                                 f"this version reads version {PROMPT_FILE_VERSION}")
        unknown = set(data) - {"version", "frame", "image_shape", "protocol", "boxes", "boxes3d", "points", "text"}
        if unknown:
            raise InputFileError(f"{source}: unknown key(s) {sorted(unknown)}",
                                 "allowed: boxes, boxes3d, points, text, protocol, image_shape")

        def build(kind, entries, key):
            out = []
            for n, e in enumerate(entries or []):
                try:
                    out.append(kind(**e))
                except TypeError as exc:
                    raise InputFileError(f"{source}: {key}[{n}] = {e!r} is malformed ({exc})") from exc
            return out

        shape = data.get("image_shape")
        return cls(
            boxes=build(Box2D, data.get("boxes"), "boxes"),
            boxes3d=build(Box3D, data.get("boxes3d"), "boxes3d"),
            points=build(Point2D, data.get("points"), "points"),
            text=[str(t) for t in data.get("text") or []],
            protocol=dict(data.get("protocol") or {}),
            image_shape=tuple(shape) if shape else None,
        )

    def save(self, path) -> None:
        """Write the prompt file (JSON)."""
        import json
        from pathlib import Path

        Path(path).write_text(json.dumps(self.to_dict(), indent=1, default=_json_default))

    @classmethod
    def load(cls, path) -> PromptSet:
        """Read a prompt file written by :meth:`save` (or by hand)."""
        import json
        from pathlib import Path

        p = Path(path)
        if not p.is_file():
            raise InputFileError(f"prompt file {p} does not exist",
                                 "write one with PromptSet.save / prompts_from_mask, or give boxes with --box")
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise InputFileError(f"prompt file {p} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, source=str(p))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def parse_box_arg(text: str, label: int = 1, name: str | None = None) -> Box2D | Box3D:
    """Parse a command-line box: ``K,X0,Y0,X1,Y1`` (2D on slice K) or ``K0:K1,X0,Y0,X1,Y1`` (3D)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 5:
        raise OrganSegBenchError(f"cannot parse box {text!r}",
                                 "use K,X0,Y0,X1,Y1 (one slice) or K0:K1,X0,Y0,X1,Y1 (slices K0..K1)")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts[1:])
        if ":" in parts[0]:
            k0, k1 = (int(v) for v in parts[0].split(":"))
            return Box3D(k0, k1, y0, y1, x0, x1, label=label, name=name)
        return Box2D(int(parts[0]), x0, y0, x1, y1, label=label, name=name)
    except ValueError as exc:
        raise OrganSegBenchError(f"cannot parse box {text!r}: {exc}",
                                 "use numbers: K,X0,Y0,X1,Y1 or K0:K1,X0,Y0,X1,Y1") from exc
