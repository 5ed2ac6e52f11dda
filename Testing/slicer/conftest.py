"""Headless MRML scene on the PyPI package slicer-core (every test here is skipped when `import slicer` fails).

Builds what the Slicer application would: a vtkMRMLScene, a vtkSlicerApplicationLogic with the default colour
nodes, the module logics the extension uses registered under their module names, and ``slicer.mrmlScene`` set.
The module folders are put on ``sys.path`` so that ``import OrganSegBenchLib`` works as inside Slicer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for _module in ("OrganSegBench", "SegmentationReview", "ErrorDistribution"):
    sys.path.insert(0, str(ROOT / _module))

HERE = Path(__file__).resolve().parent
try:
    import slicer  # noqa: F401
    import vtk  # noqa: F401

    SLICER_ERROR: str | None = None
except Exception as _exc:  # ImportError, or a broken binary (wrong vtk)
    SLICER_ERROR = f"slicer-core is not importable ({_exc}); pip install -e '.[slicer]'"


def pytest_collection_modifyitems(config, items) -> None:
    """Skip every test of this folder, with the reason, when slicer-core cannot be imported."""
    if SLICER_ERROR is None:
        return
    skip = pytest.mark.skip(reason=SLICER_ERROR)
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)

#: module name -> logic class (the Slicer module names the app registers them under)
MODULE_LOGICS = {
    "Segmentations": "vtkSlicerSegmentationsModuleLogic",
    "Volumes": "vtkSlicerVolumesLogic",
    "Markups": "vtkSlicerMarkupsLogic",
    "Tables": "vtkSlicerTablesLogic",
    "Models": "vtkSlicerModelsLogic",
    "Plots": "vtkSlicerPlotsLogic",
}


class _Module:
    """Stand-in for ``slicer.modules.<name>`` (only ``logic()``), which slicer.util's segment helpers use."""

    def __init__(self, logic) -> None:
        self._logic = logic

    def logic(self):
        return self._logic


class _Modules:
    pass


@pytest.fixture
def mrml_scene():
    """A fresh headless scene with application and module logics; ``slicer.mrmlScene`` points at it."""
    import slicer
    import vtk

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
    logics = {}
    for name, cls_name in MODULE_LOGICS.items():
        logic = getattr(slicer, cls_name)()
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, logic)
        setattr(modules, name.lower(), _Module(logic))
        logics[name] = logic
    old_scene, old_modules = getattr(slicer, "mrmlScene", None), getattr(slicer, "modules", None)
    slicer.mrmlScene = scene
    slicer.modules = modules
    scene.organsegbench_logics = logics  # keep Python references alive for the test's lifetime
    scene.organsegbench_app_logic = app_logic
    yield scene
    scene.Clear(True)
    slicer.mrmlScene, slicer.modules = old_scene, old_modules
