"""The test session's process-wide set-up (Testing/conftest.py)."""

from __future__ import annotations

import importlib.util
import sys

import pytest


def test_triton_native_library_is_loaded_before_any_rendering():
    """Rendering tests (VTK/EGL) and model tests (torch._dynamo -> triton) share workers; see conftest."""
    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed")
    assert "triton._C.libtriton" in sys.modules
