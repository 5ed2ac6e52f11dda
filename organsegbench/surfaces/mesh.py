"""Triangle surfaces of label-map structures in physical coordinates.

Conventions:

* Points are in **millimetres, LPS** (the ITK/DICOM patient frame used by :class:`~organsegbench.io.image.Image`);
  :meth:`Surface.to_ras` gives the same surface in RAS (Slicer's frame: x and y negated, a proper rotation, so
  face orientation is unchanged).
* Faces are triangles oriented counter-clockwise seen from outside (outward normals), checked by the sign of the
  enclosed volume after every step.
* The surface is extracted with VTK's ``vtkDiscreteFlyingEdges3D`` on the binary mask of one label. Its vertices lie
  half-way between an inside and an outside voxel centre, so a flat face sits on the voxel boundary and a curved
  boundary is represented to within half a voxel (the discretisation error stated by the tests). Smoothing
  (``vtkWindowedSincPolyDataFilter``) and decimation (``vtkQuadricDecimation``) are optional, run in physical
  space, and are recorded in :attr:`Surface.metadata`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from organsegbench.errors import EmptyMaskError, GeometryMismatchError
from organsegbench.io.image import Image

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass
class Surface:
    """A closed triangle mesh with per-vertex arrays.

    Attributes:
        points: vertex positions in mm, shape ``(n, 3)``, in ``coordinate_system``.
        faces: vertex indices of each triangle, shape ``(m, 3)``, outward oriented.
        coordinate_system: ``"LPS"`` (default, ITK/DICOM) or ``"RAS"`` (Slicer).
        point_data: per-vertex arrays (for example ``signed_distance_mm``), each of length ``n``.
        metadata: provenance of the mesh (structure, label, extraction method, smoothing, decimation, source grid,
            ``field_of_view_mm`` = physical bounds of the source grid ``[xmin, xmax, ymin, ymax, zmin, zmax]``).
    """

    points: np.ndarray
    faces: np.ndarray
    coordinate_system: str = "LPS"
    point_data: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.points = np.ascontiguousarray(self.points, dtype=np.float64).reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int64).reshape(-1, 3)
        if self.coordinate_system not in ("LPS", "RAS"):
            raise ValueError(f"coordinate_system must be 'LPS' or 'RAS'; got {self.coordinate_system!r}")

    @property
    def n_points(self) -> int:
        """Number of vertices."""
        return int(self.points.shape[0])

    @property
    def n_faces(self) -> int:
        """Number of triangles."""
        return int(self.faces.shape[0])

    def bounds(self) -> np.ndarray:
        """``[xmin, xmax, ymin, ymax, zmin, zmax]`` of the vertices in mm."""
        lo, hi = self.points.min(axis=0), self.points.max(axis=0)
        return np.array([lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]])

    def area_mm2(self) -> float:
        """Total surface area in mm²."""
        a, b, c = (self.points[self.faces[:, i]] for i in range(3))
        return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())

    def volume_ml(self) -> float:
        """Enclosed volume in mL (positive for outward-oriented closed meshes)."""
        return signed_volume_mm3(self.points, self.faces) / 1000.0

    def copy(self) -> Surface:
        """A deep copy."""
        return Surface(self.points.copy(), self.faces.copy(), self.coordinate_system,
                       {k: v.copy() for k, v in self.point_data.items()}, dict(self.metadata))

    def transformed(self, matrix: np.ndarray) -> Surface:
        """A copy with points mapped by a 4x4 homogeneous matrix (faces flipped if the matrix mirrors)."""
        m = np.asarray(matrix, dtype=float)
        out = self.copy()
        out.points = self.points @ m[:3, :3].T + m[:3, 3]
        if np.linalg.det(m[:3, :3]) < 0:
            out.faces = out.faces[:, ::-1].copy()
        return out

    def to_ras(self) -> Surface:
        """The same surface in RAS coordinates (no-op copy if it already is)."""
        if self.coordinate_system == "RAS":
            return self.copy()
        out = self.copy()
        out.points = self.points @ _LPS_TO_RAS
        out.coordinate_system = "RAS"
        if "field_of_view_mm" in out.metadata:
            out.metadata["field_of_view_mm"] = _flip_bounds(out.metadata["field_of_view_mm"])
        return out

    def to_lps(self) -> Surface:
        """The same surface in LPS coordinates (no-op copy if it already is)."""
        if self.coordinate_system == "LPS":
            return self.copy()
        out = self.to_ras()  # the flip is its own inverse
        out.points = self.points @ _LPS_TO_RAS
        out.coordinate_system = "LPS"
        if "field_of_view_mm" in self.metadata:
            out.metadata["field_of_view_mm"] = _flip_bounds(self.metadata["field_of_view_mm"])
        return out

    # ------------------------------------------------------------------------------------------------- VTK
    def to_polydata(self):  # -> vtkPolyData
        """Convert to ``vtkPolyData`` with every ``point_data`` array attached (float64)."""
        from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray
        from vtkmodules.vtkCommonCore import vtkPoints
        from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData

        pd = vtkPolyData()
        pts = vtkPoints()
        pts.SetData(numpy_to_vtk(self.points, deep=True))
        pd.SetPoints(pts)
        cells = vtkCellArray()
        offsets = np.arange(0, 3 * self.n_faces + 1, 3, dtype=np.int64)
        cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=True),
                      numpy_to_vtkIdTypeArray(self.faces.ravel().astype(np.int64), deep=True))
        pd.SetPolys(cells)
        for name, values in self.point_data.items():
            arr = numpy_to_vtk(np.ascontiguousarray(values, dtype=np.float64), deep=True)
            arr.SetName(name)
            pd.GetPointData().AddArray(arr)
        return pd

    @classmethod
    def from_polydata(cls, pd, coordinate_system: str = "LPS", metadata: dict[str, Any] | None = None) -> Surface:
        """Build from a triangulated ``vtkPolyData`` (point arrays are copied into ``point_data``)."""
        from vtkmodules.util.numpy_support import vtk_to_numpy

        if pd.GetNumberOfPoints() == 0:
            return cls(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), coordinate_system, {}, metadata or {})
        points = vtk_to_numpy(pd.GetPoints().GetData()).astype(np.float64)
        polys = pd.GetPolys()
        conn = vtk_to_numpy(polys.GetConnectivityArray()).astype(np.int64)
        offs = vtk_to_numpy(polys.GetOffsetsArray()).astype(np.int64)
        if not np.all(np.diff(offs) == 3):
            raise ValueError("surface has non-triangle cells; triangulate it first (vtkTriangleFilter)")
        data = {}
        pdata = pd.GetPointData()
        for i in range(pdata.GetNumberOfArrays()):
            arr = pdata.GetArray(i)
            if arr is not None and arr.GetName() and arr.GetNumberOfComponents() == 1:
                data[arr.GetName()] = vtk_to_numpy(arr).astype(np.float64).copy()
        return cls(points, conn.reshape(-1, 3), coordinate_system, data, dict(metadata or {}))


def _flip_bounds(b: list[float] | np.ndarray) -> list[float]:
    b = [float(v) for v in b]
    return [-b[1], -b[0], -b[3], -b[2], b[4], b[5]]


def signed_volume_mm3(points: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a closed triangle mesh (mm³); negative when the faces point inwards."""
    if faces.size == 0:
        return 0.0
    a, b, c = (points[faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def field_of_view_mm(image: Image) -> list[float]:
    """Physical bounds (LPS, mm) of the voxel *boxes* of ``image``: ``[xmin, xmax, ymin, ymax, zmin, zmax]``."""
    nx, ny, nz = image.size
    corners = np.array([[i, j, k, 1.0] for i in (-0.5, nx - 0.5) for j in (-0.5, ny - 0.5) for k in (-0.5, nz - 0.5)])
    p = (image.index_to_physical_matrix() @ corners.T).T[:, :3]
    lo, hi = p.min(axis=0), p.max(axis=0)
    return [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]), float(lo[2]), float(hi[2])]


def surface_from_labelmap(image: Image, label: int | None = None, structure: str | None = None,
                          smoothing_iterations: int = 0, smoothing_pass_band: float = 0.1,
                          decimation: float = 0.0, source: str | None = None) -> Surface:
    """Extract the surface of one structure of a label map in LPS millimetres.

    Args:
        image: label map (any integer/bool array) with its geometry.
        label: label value of the structure; ``None`` takes every non-zero voxel (a binary mask).
        structure: canonical structure name, recorded in the metadata and used in error messages.
        smoothing_iterations: windowed-sinc smoothing iterations (0 = none; 10–20 is typical).
        smoothing_pass_band: windowed-sinc pass band (0–2; smaller smooths more).
        decimation: fraction of triangles to remove with quadric decimation (0 = none, 0.5 halves them).
        source: file or case name for error messages and metadata.

    Raises:
        EmptyMaskError: the structure has no voxel (no mesh is produced).
    """
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D

    what = structure or (f"label {label}" if label is not None else "foreground")
    mask = image.array == label if label is not None else image.array > 0
    if not mask.any():
        where = f" in {source}" if source else ""
        raise EmptyMaskError(
            f"structure {what!r}{' (label ' + str(label) + ')' if label is not None and structure else ''} "
            f"has no voxel{where}; no surface can be built",
            hint="check the label value / structure name, or leave this case out (an empty prediction has no "
                 "surface error map; report it as a missed structure instead)",
        )
    nz_idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    lo = [int(ix[0]) for ix in nz_idx]
    hi = [int(ix[-1]) + 1 for ix in nz_idx]
    sub = np.pad(mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], 1).astype(np.uint8)
    vol = vtkImageData()
    vol.SetDimensions(sub.shape[2], sub.shape[1], sub.shape[0])
    vol.SetOrigin(lo[2] - 1.0, lo[1] - 1.0, lo[0] - 1.0)  # index space: (i, j, k) of the padded block
    vol.SetSpacing(1.0, 1.0, 1.0)
    vol.GetPointData().SetScalars(numpy_to_vtk(sub.ravel(), deep=True))
    fe = vtkDiscreteFlyingEdges3D()
    fe.SetInputData(vol)
    fe.SetValue(0, 1)
    fe.ComputeNormalsOff()
    fe.ComputeGradientsOff()
    fe.ComputeScalarsOff()
    fe.Update()
    surf = Surface.from_polydata(fe.GetOutput())
    surf.point_data.clear()
    surf = surf.transformed(image.index_to_physical_matrix())
    _orient_outward(surf)
    steps: dict[str, Any] = {"smoothing": None, "decimation": None}
    if smoothing_iterations > 0:
        surf = _smooth(surf, smoothing_iterations, smoothing_pass_band)
        steps["smoothing"] = {"filter": "vtkWindowedSincPolyDataFilter", "iterations": int(smoothing_iterations),
                              "pass_band": float(smoothing_pass_band)}
    if decimation > 0:
        if not 0 < decimation < 1:
            raise ValueError(f"decimation must be a fraction in (0, 1); got {decimation}")
        surf = _decimate(surf, decimation)
        steps["decimation"] = {"filter": "vtkQuadricDecimation", "target_reduction": float(decimation)}
    _orient_outward(surf)
    surf.metadata = {
        "structure": structure, "label": label, "source": source, "coordinate_system": "LPS", "units": "mm",
        "extraction": "vtkDiscreteFlyingEdges3D (vertices at inside/outside voxel mid-points)", **steps,
        "source_grid": image.geometry_string(), "field_of_view_mm": field_of_view_mm(image),
        "n_points": surf.n_points, "n_faces": surf.n_faces,
    }
    return surf


def walls_only(surface: Surface, slice_normal: np.ndarray) -> Surface:
    """Keep the faces parallel to ``slice_normal`` (the side walls of a one-slice slab), dropping the two caps.

    For a single 2D slice (a one-slice volume) the caps of the two slabs coincide and would short-cut every
    distance to at most half the slice thickness; on the walls alone, distances are in-plane contour distances.
    """
    n = np.asarray(slice_normal, dtype=float)
    n = n / np.linalg.norm(n)
    p0 = surface.points[surface.faces[:, 0]]
    fn = np.cross(surface.points[surface.faces[:, 1]] - p0, surface.points[surface.faces[:, 2]] - p0)
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-300)
    keep = np.abs(fn @ n) < 0.1  # vertical walls only (caps and their 45° chamfers go)
    faces = surface.faces[keep]
    used = np.unique(faces)
    remap = np.full(surface.n_points, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    out = Surface(surface.points[used], remap[faces], surface.coordinate_system,
                  {k: v[used] for k, v in surface.point_data.items()}, dict(surface.metadata))
    out.metadata.update({"planar": True, "slice_normal": n.tolist(), "n_points": out.n_points,
                         "n_faces": out.n_faces,
                         "planar_note": "single slice: caps removed, distances are in-plane contour distances"})
    return out


def _orient_outward(surf: Surface) -> None:
    if signed_volume_mm3(surf.points, surf.faces) < 0:
        surf.faces = surf.faces[:, ::-1].copy()


def _smooth(surf: Surface, iterations: int, pass_band: float) -> Surface:
    from vtkmodules.vtkFiltersCore import vtkWindowedSincPolyDataFilter

    f = vtkWindowedSincPolyDataFilter()
    f.SetInputData(surf.to_polydata())
    f.SetNumberOfIterations(int(iterations))
    f.SetPassBand(float(pass_band))
    f.BoundarySmoothingOff()
    f.FeatureEdgeSmoothingOff()
    f.NonManifoldSmoothingOn()
    f.NormalizeCoordinatesOn()
    f.Update()
    return Surface.from_polydata(f.GetOutput(), surf.coordinate_system, surf.metadata)


def _decimate(surf: Surface, reduction: float) -> Surface:
    from vtkmodules.vtkFiltersCore import vtkQuadricDecimation

    f = vtkQuadricDecimation()
    f.SetInputData(surf.to_polydata())
    f.SetTargetReduction(float(reduction))
    f.VolumePreservationOn()
    f.Update()
    return Surface.from_polydata(f.GetOutput(), surf.coordinate_system, surf.metadata)


def require_same_space(a: Surface, b: Surface, name_a: str = "reference", name_b: str = "prediction",
                       tol_mm: float = 1.0) -> None:
    """Raise :class:`GeometryMismatchError` unless both surfaces can be compared point to point.

    They must be stated in the same coordinate system (LPS or RAS) and, when both record the field of view of the
    grid they came from, those fields of view must overlap (within ``tol_mm``). Disjoint fields of view mean the
    two label maps were not in one physical space (for example one of them lost its origin on export).
    """
    if a.coordinate_system != b.coordinate_system:
        raise GeometryMismatchError(
            f"{name_a} surface is in {a.coordinate_system} but {name_b} surface is in {b.coordinate_system}",
            hint=f"convert one of them with .to_{a.coordinate_system.lower()}() before comparing",
        )
    fa, fb = a.metadata.get("field_of_view_mm"), b.metadata.get("field_of_view_mm")
    if fa is None or fb is None:
        return
    disjoint = [ax for ax in range(3) if fa[2 * ax] > fb[2 * ax + 1] + tol_mm or fb[2 * ax] > fa[2 * ax + 1] + tol_mm]
    if disjoint:
        axes = ", ".join("xyz"[ax] for ax in disjoint)
        raise GeometryMismatchError(
            f"{name_a} and {name_b} come from grids that do not overlap in physical space (along {axes}): "
            f"{name_a} field of view {np.round(fa, 1).tolist()} mm vs {name_b} {np.round(fb, 1).tolist()} mm "
            f"({a.coordinate_system})",
            hint="both label maps must be in the patient frame of the same scan: check their origin/direction "
                 "(for example a mask exported without its geometry) or register them first",
        )
