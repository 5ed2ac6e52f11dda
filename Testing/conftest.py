"""Shared pytest fixtures: seeded randomness, the real data folders (skipped when absent), the sample data."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

# triton's native library (pulled in by torch._dynamo, e.g. moosez -> nnunetv2) segfaults when it is first loaded
# after VTK has opened an offscreen (EGL) render window in the same process — as happens when a rendering test and a
# model test share a pytest worker. Loaded first, both work. Only the test session needs this: the CLI renders and
# runs models in separate processes.
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # makes `import synthetic` work in every test folder

#: ../shared/data beside the checkout (read-only real data; never copied into the repo)
SHARED_DATA = Path(os.environ.get("ORGANSEGBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator; tests must be reproducible."""
    return np.random.default_rng(20261123)


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``ORGANSEGBENCH_CACHE`` inside the test's tmp folder: weights, embeddings and model homes a test writes never
    reach the user's cache (and never leak between tests)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("ORGANSEGBENCH_CACHE", str(path))
    return path


@pytest.fixture
def model_env(isolated_cache: Path) -> Path:
    """:func:`isolated_cache` plus one torch thread (two xdist workers share the CI machine's two cores)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return isolated_cache


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test when the folder is absent (fresh clones have none)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def dcmqi_data(shared_data: Path) -> Path:
    """The dcmqi example segmentations folder (real CT slices, NRRD masks, DICOM SEGs)."""
    p = shared_data / "dcmqi" / "data" / "segmentations"
    if not p.is_dir():
        pytest.skip(f"{p} is absent")
    return p

@pytest.fixture(scope="session")
def aorta(shared_data: Path) -> Path:
    """The seed's Probabilistic_UNet folder: multi-model aorta slices (Data_Sample/TrainDataset/AO), manual labels
    (Data_Sample/TestDataset/AO) and student predictions (Output/AO); skips when absent."""
    root = (shared_data / "organsegbench" / "Multi-source_Knowledge_Distillation" / "Probabilistic_Distillation"
            / "Probabilistic_UNet")
    if not (root / "Data_Sample" / "TrainDataset" / "AO").is_dir():
        pytest.skip(f"aorta slices absent under {root}")
    return root


@pytest.fixture(scope="session")
def sample_data():
    """The cached TotalSegmentator reference files (fetched from PyPI once, verified by sha256)."""
    from organsegbench import sample_data as sd

    try:
        return sd.fetch()
    except Exception as exc:
        if os.environ.get("CI"):  # CI reaches PyPI: a failed fetch there is a real failure, not a skip
            raise
        pytest.skip(f"sample data unavailable (offline?): {exc}")
