"""Writing surfaces (VTP, PLY, STL) and offscreen PNG renderings coloured by signed distance.

* **VTP** (VTK XML PolyData) keeps every per-vertex array as float64 — the lossless format; open it in Slicer or
  ParaView.
* **PLY** (binary little-endian) holds the vertices, the triangles, one float property per array (named after the
  array, e.g. ``signed_distance_mm``) and RGB colours from the diverging colour map, so viewers without scalar
  support still show the error map.
* **STL** holds geometry only (the format has no per-vertex values).

Rendering uses VTK offscreen. On a machine without an X display VTK ≥ 9.4 wheels render through EGL
(``vtkEGLRenderWindow``, selected here when ``DISPLAY`` is unset); where no offscreen VTK window exists (older
wheels) a matplotlib 3D rendering is used instead and recorded as the backend in the return value.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from organsegbench.surfaces.mesh import Surface

log = logging.getLogger(__name__)

#: colour map for signed errors: blue = inside the reference, white = on it, red = outside
CMAP = "RdBu_r"
#: colour map for non-negative arrays (absolute errors): light = small, dark red = large
SEQ_CMAP = "YlOrRd"


def write_surface(surface: Surface, path: str | Path) -> Path:
    """Write ``surface`` as .vtp, .ply or .stl (chosen by the suffix); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".vtp":
        from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

        w = vtkXMLPolyDataWriter()
        w.SetDataModeToBinary()
    elif suffix == ".stl":
        from vtkmodules.vtkIOGeometry import vtkSTLWriter

        w = vtkSTLWriter()
        w.SetFileTypeToBinary()
    elif suffix == ".ply":
        return _write_ply(surface, path)
    else:
        raise ValueError(f"unsupported surface format {path.suffix!r}; use .vtp, .ply or .stl")
    w.SetFileName(str(path))
    w.SetInputData(surface.to_polydata())
    if not w.Write():
        raise OSError(f"could not write {path}")
    return path


def read_surface(path: str | Path, coordinate_system: str = "LPS") -> Surface:
    """Read a .vtp or .stl surface (per-vertex arrays of a VTP are restored)."""
    path = Path(path)
    if path.suffix.lower() == ".vtp":
        from vtkmodules.vtkIOXML import vtkXMLPolyDataReader as Reader
    elif path.suffix.lower() == ".stl":
        from vtkmodules.vtkIOGeometry import vtkSTLReader as Reader
    else:
        raise ValueError(f"unsupported surface format {path.suffix!r}; use .vtp or .stl")
    r = Reader()
    r.SetFileName(str(path))
    r.Update()
    return Surface.from_polydata(r.GetOutput(), coordinate_system)


def colours_for(values: np.ndarray, limit_mm: float) -> np.ndarray:
    """uint8 RGB colours of ``values`` (mm) on the diverging map clipped to ``±limit_mm``."""
    from matplotlib import colormaps

    t = (np.clip(values, -limit_mm, limit_mm) / limit_mm + 1.0) / 2.0
    return (colormaps[CMAP](t)[:, :3] * 255).round().astype(np.uint8)


def _write_ply(surface: Surface, path: Path, colour_array: str = "signed_distance_mm") -> Path:
    names = list(surface.point_data)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + [(n, "<f4") for n in names]
    has_colour = colour_array in surface.point_data
    if has_colour:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vert = np.zeros(surface.n_points, dtype=fields)
    for i, ax in enumerate("xyz"):
        vert[ax] = surface.points[:, i]
    for n in names:
        vert[n] = surface.point_data[n]
    if has_colour:
        vals = surface.point_data[colour_array]
        rgb = colours_for(vals, symmetric_limit(vals))
        vert["red"], vert["green"], vert["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    face = np.zeros(surface.n_faces, dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    face["n"] = 3
    face["idx"] = surface.faces
    props = "\n".join(f"property {'uchar' if t == 'u1' else 'float'} {n}" for n, t in fields)
    header = (f"ply\nformat binary_little_endian 1.0\ncomment OrganSegBench surface, {surface.coordinate_system} "
              f"coordinates in mm\nelement vertex {surface.n_points}\n{props}\nelement face {surface.n_faces}\n"
              "property list uchar int vertex_indices\nend_header\n")
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(vert.tobytes())
        fh.write(face.tobytes())
    return path


def symmetric_limit(values: np.ndarray, percentile: float = 99.0, minimum: float = 0.5) -> float:
    """Colour limit (mm): the ``percentile`` of ``|values|``, at least ``minimum``, rounded up to 0.5 mm."""
    lim = float(np.percentile(np.abs(values), percentile)) if np.size(values) else minimum
    return float(np.ceil(max(lim, minimum) * 2.0) / 2.0)


def choose_views(surface: Surface) -> list[str]:
    """Views that show the surface: one axial view for a flat (single-slice) surface, else anterior + left."""
    ext = np.ptp(surface.points, axis=0)
    if ext[2] < 0.2 * max(ext[0], ext[1]):
        return ["axial"]
    return ["anterior", "left"]


# view name -> (direction from the centre to the camera, view-up), in LPS
_VIEWS_LPS = {
    "anterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "posterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "left": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "right": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "axial": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),  # from the feet, anterior up: radiological convention
    "superior": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
}
_VIEW_TITLES = {"anterior": "anterior view", "posterior": "posterior view", "left": "left lateral view",
                "right": "right lateral view", "axial": "axial view (from feet)", "superior": "superior view"}


def vtk_offscreen_available() -> bool:
    """True when VTK can render without a display (EGL/OSMesa window class present, or an X display set)."""
    if os.environ.get("DISPLAY"):
        return True
    try:
        import vtkmodules.vtkRenderingOpenGL2 as gl
    except ImportError:
        return False
    return hasattr(gl, "vtkEGLRenderWindow") or hasattr(gl, "vtkOSOpenGLRenderWindow")


def render_png(surface: Surface, path: str | Path, array: str = "signed_distance_mm", title: str = "",
               limit_mm: float | None = None, views: list[str] | None = None, size: int = 520,
               backend: str = "auto") -> str:
    """Render ``surface`` coloured by ``array`` with a colour bar in mm; returns the backend used.

    Args:
        limit_mm: colour range ``±limit_mm`` (default: 99th percentile of ``|array|``, rounded up to 0.5 mm);
            non-negative arrays (``*abs*``) use ``0..limit_mm`` on a sequential map.
        views: names among anterior, posterior, left, right, axial, superior (default: :func:`choose_views`).
        backend: ``"vtk"``, ``"matplotlib"`` or ``"auto"`` (VTK when it can render offscreen here). Planar
            surfaces (single 2D slices) are always drawn as coloured in-plane contours with matplotlib
            (``"matplotlib-2d"``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    values = surface.point_data[array]
    lim = symmetric_limit(values) if limit_mm is None else float(limit_mm)
    non_negative = "abs" in array or (np.size(values) and float(np.min(values)) >= 0 and "signed" not in array)
    crange, cmap = ((0.0, lim), SEQ_CMAP) if non_negative else ((-lim, lim), CMAP)
    views = views or choose_views(surface)
    unknown = [v for v in views if v not in _VIEWS_LPS]
    if unknown:
        raise ValueError(f"unknown view(s) {unknown}; choose from {sorted(_VIEWS_LPS)}")
    label = array.replace("_mm", "").replace("_", " ") + " (mm)"
    if surface.metadata.get("planar"):
        from organsegbench.surfaces._render_mpl import render_planar

        render_planar(surface, path, values, crange, cmap, title, label)
        return "matplotlib-2d"
    if backend in ("auto", "vtk") and vtk_offscreen_available():
        try:
            from organsegbench.surfaces._render_vtk import render_vtk

            render_vtk(surface, path, values, crange, cmap, views, title, label, size, _VIEWS_LPS, _VIEW_TITLES)
            return "vtk"
        except Exception as exc:  # noqa: BLE001 - any GL failure falls back to matplotlib
            if backend == "vtk":
                raise
            log.warning("VTK offscreen rendering failed (%s); using matplotlib", exc)
    from organsegbench.surfaces._render_mpl import render_mpl

    render_mpl(surface, path, values, crange, cmap, views, title, label, size, _VIEWS_LPS, _VIEW_TITLES)
    return "matplotlib"
