"""Headless MRML scene on the PyPI package slicer-core (every test here is skipped when `import slicer` fails).

The scene is built by ``OrganSegBenchLib.headless.create_headless_scene`` as the Slicer application would: a
vtkMRMLScene, a vtkSlicerApplicationLogic with the default colour nodes, the module logics the extension uses
registered under their module names, and ``slicer.mrmlScene`` set.
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


@pytest.fixture
def mrml_scene():
    """A fresh headless scene with application and module logics; ``slicer.mrmlScene`` points at it."""
    from OrganSegBenchLib.headless import create_headless_scene

    headless = create_headless_scene()
    scene = headless.scene
    scene.organsegbench_app_logic = headless.app_logic  # for offscreen rendering in tests
    scene.organsegbench_headless = headless  # keep the logics referenced for the test's lifetime
    yield scene
    headless.close()
