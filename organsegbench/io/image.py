"""The one image type of the engine: a numpy array plus its physical geometry.

Conventions (the same as SimpleITK/ITK, stated once here and relied on everywhere):

* ``array`` is indexed ``[k, j, i]`` (slice, row, column), i.e. numpy order ``(z, y, x)`` as returned by
  ``SimpleITK.GetArrayFromImage``.
* ``spacing`` (mm), ``origin`` (mm) and ``direction`` are in ITK order ``(x, y, z)`` and in **LPS** physical
  coordinates. ``direction`` is a row-major 3x3 matrix whose columns are the i, j, k axis directions.
* ``spacing_zyx`` gives the spacing in array-axis order, which is what the metric functions take.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import SimpleITK as sitk


@dataclass
class Image:
    """A 3D volume or label map with full geometry.

    Attributes:
        array: voxel data, shape ``(nz, ny, nx)``.
        spacing: voxel size in mm, ``(sx, sy, sz)``.
        origin: physical position of voxel ``[0, 0, 0]`` in mm, LPS, ``(x, y, z)``.
        direction: 3x3 direction cosines (columns = i, j, k axes), LPS.
        metadata: free-form information (source file, label names, provenance).
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim == 2:
            self.array = self.array[np.newaxis]
        if self.array.ndim != 3:
            raise ValueError(f"Image needs a 3D array (z, y, x); got shape {self.array.shape}")
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if any(s <= 0 for s in self.spacing):
            raise ValueError(f"spacing must be positive (mm); got {self.spacing}")

    # ----------------------------------------------------------------------------------------------- geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(nz, ny, nx)``."""
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def size(self) -> tuple[int, int, int]:
        """Grid size in ITK order ``(nx, ny, nz)``."""
        nz, ny, nx = self.array.shape
        return (nx, ny, nz)

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """Spacing in array-axis order ``(sz, sy, sx)`` in mm, as the metric functions expect."""
        return (self.spacing[2], self.spacing[1], self.spacing[0])

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (cm³)."""
        return float(np.prod(self.spacing)) / 1000.0

    def index_to_physical_matrix(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous ``(i, j, k, 1)`` indices to LPS millimetres."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def ijk_to_ras_matrix(self) -> np.ndarray:
        """4x4 matrix mapping ``(i, j, k, 1)`` to RAS millimetres (Slicer's convention)."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.index_to_physical_matrix()

    def geometry_string(self) -> str:
        """Human-readable one-line description of the grid."""
        d = np.round(self.direction, 4).ravel().tolist()
        return (
            f"size={self.size} spacing={tuple(round(s, 4) for s in self.spacing)} mm "
            f"origin={tuple(round(o, 3) for o in self.origin)} mm direction={d}"
        )

    def with_array(self, array: np.ndarray, **metadata: Any) -> Image:
        """A new image on the same grid with another array (metadata merged)."""
        if tuple(np.shape(array)) != self.shape:
            raise ValueError(f"array shape {np.shape(array)} differs from the grid {self.shape}")
        return replace(self, array=np.asarray(array), direction=self.direction.copy(),
                       metadata={**self.metadata, **metadata})

    # ----------------------------------------------------------------------------------------------- SimpleITK
    @classmethod
    def from_sitk(cls, img: sitk.Image, **metadata: Any) -> Image:
        """Convert a 3D (or 2D, promoted to one slice) SimpleITK image."""
        if img.GetDimension() == 2:
            img = sitk.JoinSeries(img)
        if img.GetDimension() != 3:
            raise ValueError(f"only 2D/3D images are supported; got {img.GetDimension()}D")
        if img.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError(
                f"multi-component images ({img.GetNumberOfComponentsPerPixel()} components) are not supported; "
                "split the channels first"
            )
        return cls(
            array=sitk.GetArrayFromImage(img),
            spacing=img.GetSpacing(),
            origin=img.GetOrigin(),
            direction=np.array(img.GetDirection()).reshape(3, 3),
            metadata=dict(metadata),
        )

    def to_sitk(self) -> sitk.Image:
        """Convert to a SimpleITK image with the same geometry (array is not shared)."""
        arr = self.array
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(tuple(self.direction.ravel().tolist()))
        return img
