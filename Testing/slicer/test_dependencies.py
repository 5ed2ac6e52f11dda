"""First-use dependency installation: asks first, installs only what is missing, never at import; the list
matches pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from organsegbench.errors import DependencyError

ROOT = Path(__file__).resolve().parents[2]


def test_requirement_list_matches_pyproject() -> None:
    from OrganSegBenchLib.dependencies import ENGINE_REQUIREMENTS

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!\[ ;]", d, maxsplit=1)[0].lower() for d in deps}
    listed = {re.split(r"[<>=!\[ ;]", d, maxsplit=1)[0].lower() for d in ENGINE_REQUIREMENTS.values()}
    assert names == listed, f"pyproject only: {names - listed}; dependencies.py only: {listed - names}"


def test_nothing_missing_means_no_question() -> None:
    from OrganSegBenchLib.dependencies import ensure_requirements

    asked: list[str] = []
    assert ensure_requirements(lambda m: asked.append(m) or True, lambda r: pytest.fail("installed"),
                               {"json": "json"})
    assert asked == []


def test_missing_package_asks_and_respects_no() -> None:
    from OrganSegBenchLib.dependencies import ensure_requirements

    installed: list[list[str]] = []
    reqs = {"organsegbench_no_such_pkg": "organsegbench-no-such-pkg>=1"}
    assert ensure_requirements(lambda m: False, installed.append, reqs) is False
    assert installed == []
    messages: list[str] = []
    with pytest.raises(DependencyError, match="did not make them importable"):
        ensure_requirements(lambda m: messages.append(m) or True, installed.append, reqs)
    assert installed == [["organsegbench-no-such-pkg>=1"]] and "organsegbench-no-such-pkg>=1" in messages[0]


def test_torch_goes_through_the_pytorch_extension(monkeypatch) -> None:
    import importlib.util

    from OrganSegBenchLib import dependencies

    real = importlib.util.find_spec
    monkeypatch.setattr(dependencies.importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    calls: list[dict] = []

    class FakePyTorchUtils:
        def installTorch(self, **kw):  # noqa: N802 - the extension's API name
            calls.append(kw)
            return object()

    assert dependencies.ensure_torch(lambda m: True, FakePyTorchUtils())
    assert calls == [{"askConfirmation": False, "torchVersionRequirement": dependencies.TORCH_REQUIREMENT}]
    assert dependencies.ensure_torch(lambda m: False, FakePyTorchUtils()) is False and len(calls) == 1
    with pytest.raises(DependencyError, match="PyTorch extension is missing"):
        dependencies.ensure_torch(lambda m: True)


def test_old_slicer_python_gets_a_clear_message() -> None:
    from OrganSegBenchLib import unsupported_python_message

    assert unsupported_python_message((3, 12, 1)) is None
    msg = unsupported_python_message((3, 9, 10))
    assert "3.9.10" in msg and "Slicer 5.10" in msg
