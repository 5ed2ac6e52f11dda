"""Model registry: name -> adapter class. Adapter modules import torch lazily, so listing is cheap."""

from __future__ import annotations

import importlib
from typing import Any

from organsegbench.errors import unknown_name
from organsegbench.models.protocol import Capabilities

#: registry name -> "module:Class" (module relative to organsegbench.models)
ADAPTERS: dict[str, str] = {
    "sam": "sam:SamSegmenter",
    "medsam": "medsam:MedSamSegmenter",
    "sam2": "sam2:Sam2Segmenter",
    "sam2-video": "sam2:Sam2VideoSegmenter",
    "medsam2": "medsam2:MedSam2Segmenter",
    "totalsegmentator": "totalseg:TotalSegmentatorSegmenter",
    "moose": "moose:MooseSegmenter",
    "segvol": "segvol:SegVolSegmenter",
    "sat": "sat:SatSegmenter",
}


def names() -> list[str]:
    """All registered model names."""
    return sorted(ADAPTERS)


def get(name: str) -> type:
    """Adapter class of model ``name``; :class:`UnknownNameError` listing the names otherwise."""
    if name not in ADAPTERS:
        raise unknown_name("model", name, names())
    module, cls = ADAPTERS[name].split(":")
    mod = importlib.import_module(f"organsegbench.models.{module}")
    return getattr(mod, cls)


def create(name: str, **kwargs: Any):
    """Instantiate model ``name`` (kwargs: weights, device, batch_size, seed, adapter options)."""
    return get(name)(**kwargs)


def capabilities(name: str) -> Capabilities:
    """Declared capabilities of model ``name``."""
    return get(name).capabilities


def describe(root=None) -> list[dict[str, Any]]:
    """One row per model: capabilities, licences, and which of its weights are in the cache."""
    from organsegbench.models import weights as W

    rows = []
    for n in names():
        try:
            caps = capabilities(n)
        except (ImportError, AttributeError) as exc:  # a broken adapter module is listed, not hidden
            rows.append({"name": n, "error": str(exc)})
            continue
        present = [w for w in caps.weights if w in W.catalog() and W.is_present(w, root)]
        rows.append({**caps.as_dict(), "weights_present": present,
                     "package_installed": _installed(caps.package)})
    return rows


def _installed(package: str | None) -> bool | None:
    if package is None:
        return None
    return importlib.util.find_spec(package) is not None
