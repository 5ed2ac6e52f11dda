"""Per-user locations. Everything the engine downloads or caches lives under :func:`cache_dir`."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of the user cache: ``$ORGANSEGBENCH_CACHE`` or ``~/.cache/organsegbench`` (created on demand)."""
    root = os.environ.get("ORGANSEGBENCH_CACHE")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "organsegbench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def weights_dir() -> Path:
    """Folder for model checkpoints: ``<cache>/weights``."""
    path = cache_dir() / "weights"
    path.mkdir(parents=True, exist_ok=True)
    return path
