"""The model frame: the input array permuted/flipped so that axis 0 runs inferior->superior (axial slices),
axis 1 anterior->posterior (rows) and axis 2 right->left (columns), i.e. an LPS-aligned grid as most CT models
were trained on. Only axis permutations and flips are used (no resampling), so the mapping is exact both ways.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from organsegbench.errors import OrganSegBenchError
from organsegbench.prompts import Box2D, Box3D, Point2D, PromptSet


@dataclass(frozen=True)
class Frame:
    """Mapping between the input array (z, y, x) and the model frame.

    ``perm[m]`` is the input axis that becomes model axis ``m``; ``flip[m]`` reverses model axis ``m``;
    ``shape`` is the input array's shape.
    """

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]
    shape: tuple[int, int, int]

    @classmethod
    def identity(cls, shape: tuple[int, int, int]) -> Frame:
        """No reorientation."""
        return cls((0, 1, 2), (False, False, False), tuple(shape))

    @classmethod
    def from_direction(cls, direction: np.ndarray, shape: tuple[int, int, int]) -> Frame:
        """Frame for an image with ITK ``direction`` (columns = i, j, k axes in LPS)."""
        d = np.asarray(direction, dtype=float).reshape(3, 3)
        perm = [0, 0, 0]
        flip = [False, False, False]
        used = set()
        for a in range(3):  # array axis a <-> ITK index axis 2 - a
            col = d[:, 2 - a]
            p = int(np.argmax(np.abs(col)))
            if p in used:
                raise OrganSegBenchError(f"image direction {d.ravel().round(3).tolist()} is degenerate",
                                         "fix the image header (two axes point the same way)")
            used.add(p)
            m = 2 - p  # physical x (L) -> model axis 2, y (P) -> 1, z (S) -> 0
            perm[m] = a
            flip[m] = bool(col[p] < 0)
        return cls(tuple(perm), tuple(flip), tuple(shape))

    @property
    def is_identity(self) -> bool:
        """True when the input already is in the model frame."""
        return self.perm == (0, 1, 2) and not any(self.flip)

    @property
    def model_shape(self) -> tuple[int, int, int]:
        """Array shape in the model frame."""
        return tuple(self.shape[a] for a in self.perm)

    def to_model(self, array: np.ndarray) -> np.ndarray:
        """Input array -> model frame (a view where possible)."""
        out = np.transpose(array, self.perm)
        for m, f in enumerate(self.flip):
            if f:
                out = np.flip(out, axis=m)
        return out

    def from_model(self, array: np.ndarray) -> np.ndarray:
        """Model-frame array -> input frame (contiguous copy)."""
        out = array
        for m, f in enumerate(self.flip):
            if f:
                out = np.flip(out, axis=m)
        return np.ascontiguousarray(np.transpose(out, np.argsort(self.perm)))

    # ------------------------------------------------------------------------------------------- prompts
    def _index(self, idx_in: tuple[float, float, float]) -> tuple[float, float, float]:
        """Input (k, j, i) index -> model (k, j, i) index."""
        out = []
        for m in range(3):
            a = self.perm[m]
            v = idx_in[a]
            out.append(self.shape[a] - 1 - v if self.flip[m] else v)
        return tuple(out)

    def _box3d(self, b: Box3D) -> Box3D:
        lo = self._index((b.k0, b.y0, b.x0))
        hi = self._index((b.k1, b.y1, b.x1))
        k0, k1 = sorted((lo[0], hi[0]))
        y0, y1 = sorted((lo[1], hi[1]))
        x0, x1 = sorted((lo[2], hi[2]))
        return replace(b, k0=int(k0), k1=int(k1), y0=y0, y1=y1, x0=x0, x1=x1)

    def prompts_to_model(self, prompts: PromptSet) -> PromptSet:
        """Prompts given in input array indices -> model frame. 2D prompts need the slice axis to stay axis 0."""
        if self.is_identity:
            return prompts
        if (prompts.boxes or prompts.points) and self.perm[0] != 0:
            raise OrganSegBenchError(
                "2D box/point prompts were given on a non-axial acquisition (array axis 0 is not the "
                "inferior-superior axis)",
                "give a 3D box (K0:K1,X0,Y0,X1,Y1) instead, or reorient the image to axial first",
            )
        boxes = []
        for b in prompts.boxes:
            b3 = self._box3d(Box3D(b.slice, b.slice, b.y0, b.y1, b.x0, b.x1))
            boxes.append(replace(b, slice=b3.k0, x0=b3.x0, y0=b3.y0, x1=b3.x1, y1=b3.y1))
        points = []
        for p in prompts.points:
            k, y, x = self._index((p.slice, p.y, p.x))
            points.append(Point2D(int(k), x, y, p.positive, p.label, p.name))
        return replace(prompts, boxes=boxes, points=points, boxes3d=[self._box3d(b) for b in prompts.boxes3d],
                       image_shape=self.model_shape)


def box2d_from_3d(b: Box3D, k: int) -> Box2D:
    """The in-plane box of a 3D box on slice ``k``."""
    return Box2D(k, b.x0, b.y0, b.x1, b.y1, b.label, b.name)
