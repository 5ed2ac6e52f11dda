"""Packaging checks that need no Slicer: every shipped file is listed in CMake, every `self.ui.<name>` exists in
its .ui, .ui files parse, one add_subdirectory per module, module Lib code never imports Qt/ctk, icons are 128x128."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("OrganSegBench", "SegmentationReview", "ErrorDistribution")


def _cmake_list(text: str, variable: str) -> list[str]:
    """Entries of ``set(<variable> ...)`` with ``${MODULE_NAME}`` expanded."""
    name = re.search(r"set\(MODULE_NAME\s+(\w+)\)", text)
    m = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert m, f"set({variable} ...) not found"
    entries = [e for e in m.group(1).split() if not e.startswith("#")]
    return [e.replace("${MODULE_NAME}", name.group(1) if name else "") for e in entries]


def _module_files(module: str, suffixes: tuple[str, ...]) -> set[str]:
    folder = ROOT / module
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.suffix in suffixes and p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.parametrize("module", MODULES)
def test_every_module_python_file_is_in_scripts(module: str) -> None:
    text = (ROOT / module / "CMakeLists.txt").read_text()
    scripts = set(_cmake_list(text, "MODULE_PYTHON_SCRIPTS"))
    on_disk = _module_files(module, (".py",))
    assert on_disk, f"{module} has no Python files"
    assert on_disk - scripts == set(), f"{module}: .py files missing from SCRIPTS (absent in the package)"
    assert scripts - on_disk == set(), f"{module}: SCRIPTS lists files that do not exist"


@pytest.mark.parametrize("module", MODULES)
def test_every_module_resource_is_in_resources(module: str) -> None:
    text = (ROOT / module / "CMakeLists.txt").read_text()
    resources = set(_cmake_list(text, "MODULE_PYTHON_RESOURCES"))
    on_disk = _module_files(module, (".ui", ".png", ".svg", ".json"))
    assert f"Resources/UI/{module}.ui" in on_disk
    assert f"Resources/Icons/{module}.png" in on_disk
    assert on_disk - resources == set(), f"{module}: resources missing from RESOURCES (absent in the package)"
    assert resources - on_disk == set(), f"{module}: RESOURCES lists files that do not exist"


@pytest.mark.parametrize("module", MODULES)
def test_module_cmake_uses_scripted_module_macro(module: str) -> None:
    text = (ROOT / module / "CMakeLists.txt").read_text()
    call = re.search(r"slicerMacroBuildScriptedModule\((.*?)\)\s*$", text, re.S)
    assert call, "slicerMacroBuildScriptedModule(...) missing"
    body = call.group(1)
    for word in ("NAME ${MODULE_NAME}", "SCRIPTS ${MODULE_PYTHON_SCRIPTS}", "RESOURCES ${MODULE_PYTHON_RESOURCES}",
                 "WITH_GENERIC_TESTS"):
        assert word in body


def _ui_widget_names(ui_path: Path) -> set[str]:
    tree = ET.parse(ui_path)  # raises on malformed XML
    names = {w.get("name") for w in tree.iter("widget")}
    names |= {a.get("name") for a in tree.iter("action")}
    names |= {lay.get("name") for lay in tree.iter("layout")}
    return {n for n in names if n}


@pytest.mark.parametrize("module", MODULES)
def test_ui_files_parse_and_define_every_used_widget(module: str) -> None:
    ui_names: set[str] = set()
    for ui in (ROOT / module / "Resources" / "UI").glob("*.ui"):
        ui_names |= _ui_widget_names(ui)
    source = "\n".join(p.read_text() for p in (ROOT / module).rglob("*.py"))  # module file and its Gui mixins
    used = set(re.findall(r"self\.ui\.(\w+)", source))
    assert used - ui_names == set(), f"{module}.py uses widgets absent from its .ui"


@pytest.mark.parametrize("module", MODULES)
def test_module_file_follows_template(module: str) -> None:
    source = (ROOT / module / f"{module}.py").read_text()
    for cls in (f"class {module}(ScriptedLoadableModule)",
                f"class {module}Widget(ScriptedLoadableModuleWidget, VTKObservationMixin",
                f"class {module}Logic(ScriptedLoadableModuleLogic)",
                f"class {module}Test(ScriptedLoadableModuleTest)"):
        assert cls in source, f"{module}.py lacks `{cls}`"
    assert f'self.resourcePath("UI/{module}.ui")' in source


@pytest.mark.parametrize("module", MODULES)
def test_lib_never_imports_qt(module: str) -> None:
    """MRML logic must run headless (slicer-core, browser front end): no qt/ctk imports in <Module>Lib."""
    pattern = re.compile(r"^\s*(import|from)\s+(qt|ctk|slicer\.qSlicer|PythonQt)\b", re.M)
    for py in (ROOT / module / f"{module}Lib").rglob("*.py"):
        assert not pattern.search(py.read_text()), f"{py} imports Qt/ctk"


def test_top_level_cmake_adds_each_module_once() -> None:
    text = (ROOT / "CMakeLists.txt").read_text()
    subdirs = re.findall(r"^\s*add_subdirectory\((\w+)\)", text, re.M)
    module_dirs = sorted(p.parent.name for p in ROOT.glob("*/CMakeLists.txt"))
    assert sorted(subdirs) == module_dirs == sorted(MODULES)
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY \"Segmentation\"", "EXTENSION_CONTRIBUTORS",
                "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS \"PyTorch\"",
                "Slicer_EXTENSION_GENERATE_CONFIG", "Slicer_EXTENSION_CPACK", "organsegbench/*.py",
                "ctkMacroCompilePythonScript(\n  TARGET_NAME OrganSegBenchEngine"):
        assert key in text, f"top-level CMakeLists.txt lacks {key}"
    icon_url = re.search(r'EXTENSION_ICONURL "([^"]+)"', text).group(1)
    assert icon_url.endswith("Resources/Icons/OrganSegBench.png")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_icons_are_128px_pngs() -> None:
    icons = [ROOT / "Resources" / "Icons" / "OrganSegBench.png"]
    icons += [ROOT / m / "Resources" / "Icons" / f"{m}.png" for m in MODULES]
    for icon in icons:
        assert _png_size(icon) == (128, 128), icon


def _parameter_fields(module: str) -> set[str]:
    """Annotated fields of the module's ``@parameterNodeWrapper`` class."""
    import ast

    tree = ast.parse((ROOT / module / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
                getattr(d, "id", None) == "parameterNodeWrapper" for d in node.decorator_list):
            return {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
    return set()


@pytest.mark.parametrize("module", MODULES)
def test_ui_parameter_bindings_exist_in_parameter_node(module: str) -> None:
    """Every widget bound with SlicerParameterName names a field of the @parameterNodeWrapper class."""
    tree = ET.parse(ROOT / module / "Resources" / "UI" / f"{module}.ui")
    bound = {p.find("string").text for p in tree.iter("property") if p.get("name") == "SlicerParameterName"}
    fields = _parameter_fields(module)
    assert fields, f"{module}.py has no @parameterNodeWrapper class"
    assert bound - fields == set(), f"{module}.ui binds unknown parameters"


def test_engine_files_are_covered_by_the_cmake_globs() -> None:
    """The extension bundles the engine through `organsegbench/*.py` and `organsegbench/*.json` globs: any other
    file type added to the engine would be missing inside Slicer."""
    text = (ROOT / "CMakeLists.txt").read_text()
    globbed = set(re.findall(r"organsegbench/\*(\.\w+)", text))
    engine = {p.suffix for p in (ROOT / "organsegbench").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert engine - globbed == set(), f"engine file types not bundled by CMake: {engine - globbed}"


def test_icon_and_screenshot_urls_point_at_files_in_the_repository() -> None:
    text = (ROOT / "CMakeLists.txt").read_text()
    urls = re.findall(r'"(https://raw\.githubusercontent\.com/[^"]+)"', text)
    urls = [u for group in urls for u in group.split()]
    assert len(urls) >= 4  # icon + three screenshots
    for url in urls:
        path = url.split("/main/", 1)[1]
        assert (ROOT / path).is_file(), f"{url} names {path}, which is not in the repository"
