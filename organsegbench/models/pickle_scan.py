"""Safety check of third-party checkpoints that their own loaders unpickle with ``torch.load(weights_only=False)``.

nnU-Net (and so TotalSegmentator and MOOSE) loads ``checkpoint_final.pth`` with ``weights_only=False``: a tampered
file could run any code at that moment. Before handing a model folder over, every ``*.pth`` in it is scanned with
:func:`torch.serialization.get_unsafe_globals_in_checkpoint`, which reads the pickle's opcodes without executing
them. A checkpoint passes when every global it names is on torch's ``weights_only`` allowlist or is one of the numpy
scalar/array constructors that nnU-Net's training logs contain (:data:`SAFE_NUMPY_GLOBALS`: they rebuild numbers from
raw bytes, they call nothing else). Anything else (``os.system``, ``builtins.eval``, an arbitrary class) is refused
by name, unless the user states they trust the file (``trust_checkpoints=True`` or
``ORGANSEGBENCH_TRUST_CHECKPOINTS=1``), which the result's provenance records.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from organsegbench.errors import DependencyError, OrganSegBenchError

#: numpy globals found in real nnU-Net v2 checkpoints (training logs hold numpy floats); numpy 1 and 2 spellings
SAFE_NUMPY_GLOBALS = frozenset({
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.ndarray", "numpy.dtype",
})
#: numeric dtype classes (numpy >= 1.25 pickles dtypes through them), e.g. ``numpy.dtypes.Float64DType``
_SAFE_DTYPE = re.compile(r"^numpy\.dtypes\.(Bool|U?Int(8|16|32|64)|Float(16|32|64)|LongDouble|Complex(64|128))DType$")
TRUST_ENV = "ORGANSEGBENCH_TRUST_CHECKPOINTS"


class UnsafeCheckpointError(OrganSegBenchError):
    """A checkpoint would run code outside the allowlist when its own loader unpickles it."""


def trusted_by_environment() -> bool:
    """True when ``ORGANSEGBENCH_TRUST_CHECKPOINTS`` is set to 1/true/yes."""
    return os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes")


def unsafe_globals(path: Path) -> list[str]:
    """Globals in checkpoint ``path`` that are neither on torch's allowlist nor in :data:`SAFE_NUMPY_GLOBALS`.

    Raises:
        UnsafeCheckpointError: the file is not a zip-format ``torch.save`` checkpoint (legacy files cannot be
            scanned without unpickling them).
    """
    try:
        from torch.serialization import get_unsafe_globals_in_checkpoint
    except ImportError as exc:
        raise DependencyError("scanning checkpoints needs torch >= 2.5", "pip install 'organsegbench[models]'") from exc
    try:
        found = get_unsafe_globals_in_checkpoint(str(path))
    except Exception as exc:  # noqa: BLE001 - legacy or corrupt file: cannot be checked without running it
        raise UnsafeCheckpointError(
            f"cannot check checkpoint {path} without unpickling it ({type(exc).__name__}: {exc})",
            f"re-download it (organsegbench weights download …), or if you trust its source set {TRUST_ENV}=1",
        ) from exc
    return sorted(g for g in found if g not in SAFE_NUMPY_GLOBALS and not _SAFE_DTYPE.match(g))


def check_model_folder(folder: Path, trust: bool | None = None) -> dict:
    """Scan every ``*.pth`` under ``folder``; return a provenance record, or raise naming the unsafe globals.

    Args:
        folder: a model folder (for example an nnU-Net ``Dataset…`` folder in the weights cache).
        trust: skip the refusal (the scan still runs and its findings are recorded); ``None`` reads
            ``ORGANSEGBENCH_TRUST_CHECKPOINTS``.
    """
    trust = trusted_by_environment() if trust is None else bool(trust)
    checked, flagged = [], {}
    for pth in sorted(Path(folder).rglob("*.pth")):
        rel = str(pth.relative_to(folder))
        try:
            bad = unsafe_globals(pth)
        except UnsafeCheckpointError as exc:
            if not trust:
                raise
            bad = [f"unscannable: {exc.message}"]
        checked.append(rel)
        if bad:
            flagged[rel] = bad
    if flagged and not trust:
        rel, bad = next(iter(flagged.items()))
        raise UnsafeCheckpointError(
            f"checkpoint {Path(folder) / rel} names Python globals outside the safe allowlist: {', '.join(bad)}; "
            "its loader (torch.load with weights_only=False) would execute them",
            f"re-download the weights from their official source; only if you trust this file, set {TRUST_ENV}=1",
        )
    return {"checked": checked, "flagged": flagged, "trusted_by_user": trust and bool(flagged)}
