"""MRML logic of the OrganSegBench module: imports slicer (MRML) but never qt/ctk; runs headless on slicer-core."""

from __future__ import annotations

import sys

#: the engine needs Python 3.11 (Slicer 5.10 and later ship Python 3.12; Slicer 5.8 ships 3.9)
MIN_PYTHON = (3, 11)


def unsupported_python_message(version: tuple[int, ...] | None = None) -> str | None:
    """A message for the user when this Slicer's Python is too old for the engine, else ``None``."""
    v = tuple(version or sys.version_info[:3])
    if v[:2] >= MIN_PYTHON:
        return None
    return (f"OrganSegBench needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or later; this Slicer has Python "
            f"{'.'.join(map(str, v))}. Install Slicer 5.10 or later.")
