"""Offscreen rendering of MRML slice and 3D views without Qt (slicer-core, batch reports, headless checks).

Uses Slicer's own pipeline: a ``vtkMRMLSliceLogic`` reslices the layers of a slice view, and Slicer's displayable
managers draw segmentations, models and colour legends, so what comes out is what the app shows in that view
(view-restricted display nodes included). In the Slicer app use the layout manager's views instead.

Set ``VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow`` to render without X (software Mesa works).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import slicer
import vtk

SLICE_MANAGERS = ("vtkMRMLSegmentationsDisplayableManager2D", "vtkMRMLModelSliceDisplayableManager")
THREED_MANAGERS = ("vtkMRMLCameraDisplayableManager", "vtkMRMLViewDisplayableManager",
                   "vtkMRMLModelDisplayableManager", "vtkMRMLSegmentationsDisplayableManager3D",
                   "vtkMRMLColorLegendDisplayableManager")


def _app_logic(app_logic):
    if app_logic is not None:
        return app_logic
    return slicer.app.applicationLogic()  # only inside the Slicer app


def _window(size: tuple[int, int]):
    rw = vtk.vtkRenderWindow()
    rw.SetOffScreenRendering(1)
    rw.SetMultiSamples(0)  # software Mesa drops translucent props with multisampling on
    rw.SetSize(*size)
    renderer = vtk.vtkRenderer()
    rw.AddRenderer(renderer)
    interactor = vtk.vtkRenderWindowInteractor()  # displayable managers expect one
    interactor.SetRenderWindow(rw)
    return rw, renderer, interactor


def _grab(rw) -> np.ndarray:
    from vtkmodules.util.numpy_support import vtk_to_numpy

    rw.Render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(rw)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    img = grab.GetOutput()
    w, h, _ = img.GetDimensions()
    rgb = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(h, w, -1)[:, :, :3]
    return np.ascontiguousarray(rgb[::-1])  # VTK rows start at the bottom


def _managers(factory, names, app_logic, renderer, view_node):
    factory.SetMRMLApplicationLogic(app_logic)
    for name in names:
        if not factory.IsDisplayableManagerRegistered(name):
            factory.RegisterDisplayableManager(name)
    group = factory.InstantiateDisplayableManagers(renderer)
    group.SetMRMLDisplayableNode(view_node)
    return group


def render_slice_view(slice_node, size: tuple[int, int] = (400, 400), app_logic=None) -> np.ndarray:
    """RGB image ``(height, width, 3)`` of a slice view: its composite node's layers plus segmentations/models
    displayable in that view."""
    headless = app_logic is not None
    app_logic = _app_logic(app_logic)
    logic = slicer.vtkMRMLSliceLogic()
    logic.SetMRMLApplicationLogic(app_logic)
    logic.SetMRMLScene(slice_node.GetScene())
    logic.SetSliceNode(slice_node)
    if headless and app_logic.GetSliceLogics() is not None:
        app_logic.GetSliceLogics().AddItem(logic)  # the managers look the view's slice logic up here
    slice_node.SetDimensions(size[0], size[1], 1)
    rw, renderer, interactor = _window(size)
    mapper = vtk.vtkImageMapper()
    mapper.SetColorWindow(255)
    mapper.SetColorLevel(127.5)
    mapper.SetInputConnection(logic.GetImageDataConnection())
    actor = vtk.vtkActor2D()
    actor.SetMapper(mapper)
    renderer.AddViewProp(actor)
    group = _managers(slicer.vtkMRMLSliceViewDisplayableManagerFactory.GetInstance(), SLICE_MANAGERS, app_logic,
                      renderer, slice_node)
    rgb = _grab(rw)
    if headless and app_logic.GetSliceLogics() is not None:
        app_logic.GetSliceLogics().RemoveItem(logic)
    del group, interactor
    return rgb


def render_3d_view(view_node, size: tuple[int, int] = (400, 400), app_logic=None, reset_camera: bool = True,
                   azimuth_deg: float = 0.0, elevation_deg: float = 0.0) -> np.ndarray:
    """RGB image of a 3D view: models, segmentations (closed surfaces) and colour legends displayable in it.

    Nodes must exist before the call (the managers are created here and read the scene once). With
    ``reset_camera`` the camera frames everything, then turns by ``azimuth_deg`` / ``elevation_deg``.
    """
    app_logic = _app_logic(app_logic)
    rw, renderer, interactor = _window(size)
    group = _managers(slicer.vtkMRMLThreeDViewDisplayableManagerFactory.GetInstance(), THREED_MANAGERS,
                      app_logic, renderer, view_node)
    if reset_camera:
        renderer.ResetCamera()
        camera = renderer.GetActiveCamera()
        camera.Azimuth(azimuth_deg)
        camera.Elevation(elevation_deg)
        camera.OrthogonalizeViewUp()
        renderer.ResetCameraClippingRange()
    rgb = _grab(rw)
    del group, interactor
    return rgb


def fit_slice_to_volume(slice_node, volume_node, centre_ras=None) -> None:
    """Show the whole volume in the slice view, centred on ``centre_ras`` (default: the volume centre)."""
    from OrganSegBenchLib.nodes import ijk_to_ras

    dims = np.array(volume_node.GetImageData().GetDimensions(), float)
    m = ijk_to_ras(volume_node)
    corners = np.array([[i, j, k, 1.0] for i in (0, dims[0]) for j in (0, dims[1]) for k in (0, dims[2])]) - [
        0.5, 0.5, 0.5, 0]
    ras = (m @ corners.T).T[:, :3]
    extent = ras.max(0) - ras.min(0)
    fov = slice_node.GetFieldOfView()
    orientation = slice_node.GetOrientation()
    in_plane = {"Axial": (0, 1), "Sagittal": (1, 2), "Coronal": (0, 2)}.get(orientation, (0, 1))
    w, h = extent[in_plane[0]], extent[in_plane[1]]
    dims_px = slice_node.GetDimensions()
    aspect = dims_px[1] / max(dims_px[0], 1)
    width = max(w, h / aspect)
    slice_node.SetFieldOfView(width, width * aspect, fov[2])
    centre = (ras.min(0) + ras.max(0)) / 2 if centre_ras is None else np.asarray(centre_ras, float)
    slice_node.JumpSliceByCentering(*centre.tolist())


def save_png(rgb: np.ndarray, path: str | Path) -> Path:
    """Write an RGB array as PNG (parent folders created)."""
    import matplotlib.image

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(p, rgb)
    return p
