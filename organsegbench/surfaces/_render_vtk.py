"""VTK offscreen renderer behind :func:`organsegbench.surfaces.export.render_png` (EGL when no display)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from organsegbench.surfaces.mesh import Surface


def _lookup_table(crange: tuple[float, float], cmap: str):
    from matplotlib import colormaps
    from vtkmodules.vtkCommonCore import vtkLookupTable

    lut = vtkLookupTable()
    n = 256
    lut.SetNumberOfTableValues(n)
    lut.SetRange(*crange)
    cols = colormaps[cmap](np.linspace(0, 1, n))
    for i, c in enumerate(cols):
        lut.SetTableValue(i, float(c[0]), float(c[1]), float(c[2]), 1.0)
    lut.Build()
    return lut


def render_vtk(surface: Surface, path: Path, values: np.ndarray, crange: tuple[float, float], cmap: str,
               views: list[str], title: str, bar_label: str, size: int, view_dirs: dict, view_titles: dict) -> None:
    """Render one viewport per view plus a colour bar, write ``path`` (PNG)."""
    if not os.environ.get("DISPLAY") and "VTK_DEFAULT_OPENGL_WINDOW" not in os.environ:
        import vtkmodules.vtkRenderingOpenGL2 as gl

        os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = (
            "vtkEGLRenderWindow" if hasattr(gl, "vtkEGLRenderWindow") else "vtkOSOpenGLRenderWindow")
    import vtkmodules.vtkRenderingFreeType  # noqa: F401  (text rendering)
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkFiltersCore import vtkPolyDataNormals
    from vtkmodules.vtkIOImage import vtkPNGWriter
    from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor
    from vtkmodules.vtkRenderingCore import (
        vtkActor,
        vtkPolyDataMapper,
        vtkRenderer,
        vtkRenderWindow,
        vtkTextActor,
        vtkWindowToImageFilter,
    )

    pd = Surface(surface.points, surface.faces, surface.coordinate_system).to_polydata()
    arr = numpy_to_vtk(np.ascontiguousarray(values, dtype=np.float64), deep=True)
    arr.SetName("values")
    pd.GetPointData().SetScalars(arr)
    normals = vtkPolyDataNormals()
    normals.SetInputData(pd)
    normals.SplittingOff()
    normals.ConsistencyOn()
    lut = _lookup_table(crange, cmap)
    flip = np.array([-1.0, -1.0, 1.0]) if surface.coordinate_system == "RAS" else np.ones(3)
    centre = surface.points.mean(axis=0)
    radius = float(np.linalg.norm(np.ptp(surface.points, axis=0))) / 2.0 or 1.0

    bar_w = max(150, 720 - size * len(views))  # keeps room for a three-line title on single views
    n_lines = title.count("\n") + 1
    header = 18 + 24 * n_lines
    width, height = size * len(views) + bar_w, size + header
    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(width, height)
    win.SetMultiSamples(0)
    for i, view in enumerate(views):
        ren = vtkRenderer()
        ren.SetBackground(1.0, 1.0, 1.0)
        ren.SetViewport(i * size / width, 0.0, (i + 1) * size / width, size / height)
        mapper = vtkPolyDataMapper()
        mapper.SetInputConnection(normals.GetOutputPort())
        mapper.SetLookupTable(lut)
        mapper.SetScalarRange(*crange)
        mapper.SetScalarModeToUsePointData()
        mapper.ScalarVisibilityOn()
        actor = vtkActor()
        actor.SetMapper(mapper)
        actor.GetProperty().SetAmbient(0.25)
        actor.GetProperty().SetDiffuse(0.75)
        ren.AddActor(actor)
        d, up = view_dirs[view]
        cam = ren.GetActiveCamera()
        cam.SetFocalPoint(*centre)
        cam.SetPosition(*(centre + np.asarray(d) * flip * radius * 4.0))
        cam.SetViewUp(*(np.asarray(up) * flip))
        ren.ResetCamera()
        cam.Zoom(1.15)
        txt = vtkTextActor()
        txt.SetInput(view_titles[view])
        txt.GetTextProperty().SetFontSize(16)
        txt.GetTextProperty().SetColor(0.2, 0.2, 0.2)
        txt.SetPosition(10, 10)
        ren.AddViewProp(txt)
        win.AddRenderer(ren)
    bar_ren = vtkRenderer()
    bar_ren.SetBackground(1.0, 1.0, 1.0)
    bar_ren.SetViewport(len(views) * size / width, 0.0, 1.0, size / height)
    bar = vtkScalarBarActor()
    bar.SetLookupTable(lut)
    bar.SetTitle(bar_label.replace(" (mm)", "\n(mm)"))
    bar.SetNumberOfLabels(5)
    bar.SetLabelFormat("%.1f" if crange[0] >= 0 else "%+.1f")
    bar.SetUnconstrainedFontSize(True)
    for prop in (bar.GetTitleTextProperty(), bar.GetLabelTextProperty()):
        prop.SetColor(0.0, 0.0, 0.0)
        prop.SetFontSize(15)
        prop.ItalicOff()
        prop.BoldOff()
        prop.ShadowOff()
    bar.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
    bar.GetPositionCoordinate().SetValue(0.12, 0.06)
    bar.SetWidth(0.8)
    bar.SetHeight(0.82)
    bar_ren.AddViewProp(bar)
    win.AddRenderer(bar_ren)
    head = vtkRenderer()
    head.SetBackground(1.0, 1.0, 1.0)
    head.SetViewport(0.0, size / height, 1.0, 1.0)
    htxt = vtkTextActor()
    htxt.SetInput(title)
    htxt.GetTextProperty().SetFontSize(17)
    htxt.GetTextProperty().SetColor(0.0, 0.0, 0.0)
    htxt.GetTextProperty().BoldOn()
    htxt.GetTextProperty().SetVerticalJustificationToTop()
    htxt.GetTextProperty().SetLineSpacing(1.15)
    htxt.SetPosition(10, header - 8)
    head.AddViewProp(htxt)
    win.AddRenderer(head)
    win.Render()
    grab = vtkWindowToImageFilter()
    grab.SetInput(win)
    grab.ReadFrontBufferOff()
    grab.Update()
    writer = vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputConnection(grab.GetOutputPort())
    writer.Write()
    win.Finalize()
