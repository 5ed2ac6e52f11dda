"""Run each module's ScriptedLoadableModuleTest methods and its Logic headless.

Only the app-only infrastructure is stood in for (``qt``, ``slicer.ScriptedLoadableModule``, ``slicer.i18n``,
``slicer.parameterNodeWrapper``: none exists in slicer-core); the module files, their Logic classes and the
self-test bodies run as written, on a real MRML scene. The widgets themselves need the Slicer app.
"""

from __future__ import annotations

import importlib.util
import sys
import types
import unittest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class _Logic:
    def __init__(self, *args, **kwargs) -> None:
        pass


class _Test(unittest.TestCase):
    def delayDisplay(self, message, msec=None):  # noqa: N802 - Slicer's API name
        pass


@pytest.fixture
def app_stubs(monkeypatch, mrml_scene):
    qt = types.ModuleType("qt")
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    i18n.translate = lambda context, text: text
    pnw = types.ModuleType("slicer.parameterNodeWrapper")
    pnw.parameterNodeWrapper = lambda cls: cls
    pnw.WithinRange = lambda lo, hi: (lo, hi)
    pnw.Choice = lambda choices: tuple(choices)
    slm = types.ModuleType("slicer.ScriptedLoadableModule")
    slm.ScriptedLoadableModule = _Logic
    slm.ScriptedLoadableModuleWidget = _Logic
    slm.ScriptedLoadableModuleLogic = _Logic
    slm.ScriptedLoadableModuleTest = _Test
    for name, module in {"qt": qt, "slicer.i18n": i18n, "slicer.parameterNodeWrapper": pnw,
                         "slicer.ScriptedLoadableModule": slm}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return mrml_scene


def _load(module: str):
    spec = importlib.util.spec_from_file_location(f"_selftest_{module}", ROOT / module / f"{module}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(("module", "methods"), [
    ("OrganSegBench", ["test_evaluate_synthetic", "test_roi_prompt"]),
    ("SegmentationReview", ["test_review_resume"]),
    ("ErrorDistribution", ["test_sphere_gap"]),
])
def test_module_self_tests_pass_headless(app_stubs, module: str, methods: list[str]) -> None:
    mod = _load(module)
    test_cls = getattr(mod, f"{module}Test")
    for method in methods:
        case = test_cls(method)
        case.setUp()
        getattr(case, method)()
