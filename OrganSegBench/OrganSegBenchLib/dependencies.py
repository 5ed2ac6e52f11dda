"""Python dependencies of the engine inside Slicer: found missing on first use, installed only after the user
confirms, on the main thread (pip in a worker thread deadlocks Slicer); never at import time.

PyTorch is installed through the PyTorch extension (``PyTorchUtilsLogic().installTorch``), which picks the build
matching the machine's CUDA; never with a bare ``pip install torch``.

The confirmation and the installer are passed in (the widget gives ``slicer.util.confirmOkCancelDisplay`` and
``slicer.util.pip_install``), so this module stays Qt-free and testable.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

#: import name -> pip requirement, the engine's base dependencies (kept in sync with pyproject.toml by a test)
ENGINE_REQUIREMENTS: dict[str, str] = {
    "numpy": "numpy>=1.26",
    "scipy": "scipy>=1.11",
    "SimpleITK": "SimpleITK>=2.3",
    "pydicom": "pydicom>=2.4",
    "highdicom": "highdicom>=0.22",
    "pylibjpeg": "pylibjpeg>=2.0",
    "openjpeg": "pylibjpeg-openjpeg>=2.0",
    "pandas": "pandas>=2.0",
    "pyarrow": "pyarrow>=14",
    "matplotlib": "matplotlib>=3.7",
    "tqdm": "tqdm>=4.66",
    "rich": "rich>=13",
    "yaml": "pyyaml>=6",
    "statsmodels": "statsmodels>=0.14",
    "vtk": "vtk>=9.3",
    "dask": "dask[distributed]>=2024.1",
    "psutil": "psutil>=5.9",
    "jsonschema": "jsonschema>=4.18",
    "filelock": "filelock>=3.12",
    "surface_distance": "surface-distance==0.1",
    "numba": "numba>=0.60",
}

#: PyTorch versions the model adapters are tested with (passed to the PyTorch extension)
TORCH_REQUIREMENT = ">=2.1"

Confirm = Callable[[str], bool]
Install = Callable[[list[str]], None]


def missing_requirements(requirements: dict[str, str] | None = None) -> list[str]:
    """Pip requirements whose import name is not importable (nothing is imported)."""
    reqs = ENGINE_REQUIREMENTS if requirements is None else requirements
    return [spec for name, spec in reqs.items() if importlib.util.find_spec(name) is None]


def ensure_requirements(confirm: Confirm, install: Install, requirements: dict[str, str] | None = None,
                        purpose: str = "OrganSegBench") -> bool:
    """Install missing requirements after ``confirm(message)`` returns True.

    Returns True when everything is available afterwards; False when the user declined (nothing installed).
    """
    missing = missing_requirements(requirements)
    if not missing:
        return True
    message = (f"{purpose} needs these Python packages, which are not installed:\n  " + "\n  ".join(missing)
               + "\n\nInstall them now? This can take a few minutes; Slicer may look busy meanwhile.")
    if not confirm(message):
        return False
    install(missing)
    importlib.invalidate_caches()
    still = missing_requirements(requirements)
    if still:
        from organsegbench.errors import DependencyError

        raise DependencyError(f"installing {', '.join(still)} did not make them importable",
                              "restart Slicer and try again; if it persists, install them from the Python console "
                              "with slicer.util.pip_install")
    return True


def model_requirements(model: str) -> dict[str, str]:
    """Import name -> requirement for the Python package a model needs (from its declared capabilities)."""
    from organsegbench.models import registry

    package = registry.capabilities(model).package
    return {package: package} if package else {}


def ensure_torch(confirm: Confirm, pytorch_utils_logic=None) -> bool:
    """Make torch importable through the PyTorch extension (asks before installing).

    ``pytorch_utils_logic``: a ``PyTorchUtils.PyTorchUtilsLogic`` instance (created when omitted). Raises
    DependencyError when the PyTorch extension is not installed, naming the fix.
    """
    if importlib.util.find_spec("torch") is not None:
        return True
    from organsegbench.errors import DependencyError

    if pytorch_utils_logic is None:
        try:
            import PyTorchUtils  # the PyTorch extension's module
        except ImportError as exc:
            raise DependencyError("PyTorch is not installed and the PyTorch extension is missing",
                                  "install the 'PyTorch' extension from the Extensions Manager, restart Slicer") from exc
        pytorch_utils_logic = PyTorchUtils.PyTorchUtilsLogic()
    if not confirm("The selected model needs PyTorch, which is not installed. Install it now through the PyTorch "
                   "extension (it picks the build for this computer's GPU)? This can take several minutes."):
        return False
    torch = pytorch_utils_logic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT)
    if torch is None:
        raise DependencyError("PyTorch installation failed or was cancelled",
                              "see the Python console for the pip output; install from the PyTorch Util module")
    return True
