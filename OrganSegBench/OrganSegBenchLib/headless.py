"""A Slicer scene without the Slicer app (PyPI ``slicer-core``): scene, application logic with the default
colour tables, the module logics this extension uses, ``slicer.mrmlScene`` set. For tests, batch scripts and a
browser front end; inside the Slicer app use the app's own scene."""

from __future__ import annotations

from dataclasses import dataclass, field

import slicer
import vtk

#: Slicer module name -> logic class in slicer-core
MODULE_LOGICS = {
    "Segmentations": "vtkSlicerSegmentationsModuleLogic",
    "Volumes": "vtkSlicerVolumesLogic",
    "Markups": "vtkSlicerMarkupsLogic",
    "Tables": "vtkSlicerTablesLogic",
    "Models": "vtkSlicerModelsLogic",
    "Plots": "vtkSlicerPlotsLogic",
}


class _Module:
    """Stand-in for ``slicer.modules.<name>`` (only ``logic()``), which slicer.util's segment helpers call."""

    def __init__(self, logic) -> None:
        self._logic = logic

    def logic(self):
        return self._logic


class _Modules:
    pass


@dataclass
class HeadlessScene:
    """The objects of a headless scene (kept referenced so VTK does not free them)."""

    scene: object
    app_logic: object
    logics: dict = field(default_factory=dict)
    previous: tuple = (None, None)

    def close(self) -> None:
        """Clear the scene and restore the previous ``slicer.mrmlScene`` / ``slicer.modules``."""
        self.scene.Clear(True)
        slicer.mrmlScene, slicer.modules = self.previous


def create_headless_scene() -> HeadlessScene:
    """Build the scene as the app would and make it ``slicer.mrmlScene``."""
    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    color_logic = slicer.vtkSlicerColorLogic()
    color_logic.SetMRMLApplicationLogic(app_logic)
    color_logic.SetMRMLScene(scene)  # adds the default colour tables
    app_logic.SetColorLogic(color_logic)
    app_logic.SetSliceLogics(vtk.vtkCollection())
    app_logic.SetViewLogics(vtk.vtkCollection())
    modules = _Modules()
    logics = {"Colors": color_logic}
    for name, cls_name in MODULE_LOGICS.items():
        logic = getattr(slicer, cls_name)()
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, logic)
        setattr(modules, name.lower(), _Module(logic))
        logics[name] = logic
    previous = (getattr(slicer, "mrmlScene", None), getattr(slicer, "modules", None))
    slicer.mrmlScene = scene
    slicer.modules = modules
    return HeadlessScene(scene, app_logic, logics, previous)
