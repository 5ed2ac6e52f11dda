"""Model list and weights status for the Segment tab: which models exist, what they need, which checkpoints are
in the per-user cache, and the download (background process) / import-a-local-file actions."""

from __future__ import annotations

from pathlib import Path


def model_rows() -> list[dict]:
    """One row per registered model: name, dims, prompt kinds, modalities, licences, weights present."""
    from organsegbench.models import registry

    return registry.describe()


def describe_model(row: dict) -> str:
    """Two lines about a model row of :func:`model_rows`: description, then dims, prompts, modalities, GPU need and
    weights licence."""
    return (f"{row.get('description', '')}\n{row.get('dims', '')}, prompts: {', '.join(row.get('prompt_kinds', []))}; "
            f"modalities: {', '.join(row.get('modalities', []))}; GPU {row.get('gpu', '?')}; "
            f"weights licence: {row.get('weights_licence', '?')}")


def weights_rows(model: str) -> list[dict]:
    """Per checkpoint of ``model``: name, present (bool), licence, size in MB, cache path, how to get it."""
    from organsegbench.models import registry
    from organsegbench.models import weights as W

    rows = []
    for name in registry.capabilities(model).weights:
        if name not in W.catalog():
            rows.append({"name": name, "present": False, "licence": "unknown", "size_mb": None, "path": "",
                         "how_to_get": "not in the weights catalog"})
            continue
        e = W.entry(name)
        rows.append({"name": name, "present": W.is_present(name), "licence": e.licence,
                     "size_mb": round(e.size / 1e6, 1) if e.size else None, "path": str(W.cache_path(name)),
                     "how_to_get": W.how_to_get(name)})
    return rows


def download_process(name: str, allow_unverified: bool = False, python: str | None = None):
    """A not-yet-started background process downloading checkpoint ``name`` (cancel kills it; the download
    resumes next time)."""
    from organsegbench.runner import BackgroundProcess, python_executable

    cmd = [python or python_executable(), "-m", "organsegbench", "weights", "download", name]
    if allow_unverified:
        cmd.append("--allow-unverified")
    return BackgroundProcess(cmd)


def import_local_file(name: str, path: str | Path, allow_unverified: bool = False) -> Path:
    """Copy a checkpoint obtained elsewhere into the cache after checking its sha256; returns the cached path."""
    from organsegbench.models import weights as W

    return W.import_weights(name, path, allow_unverified=allow_unverified)
