"""Per-case result cache: ``OUT/cache/<case>.parquet``, valid while the inputs and options are unchanged.

The key hashes, for the reference and every prediction, the path, size and modification time (ns) — for a DICOM
folder every file in it — plus the evaluation options and the engine version. Changing a file, an option or the
engine makes the case run again; anything else is read back instead of recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from organsegbench.analysis._common import TIDY_COLUMNS

CACHE_FORMAT = 1


def file_stamp(path: Path | None) -> list[Any]:
    """(path, size, mtime_ns) of a file; every file's stamp for a folder; a marker when absent."""
    if path is None:
        return ["none"]
    p = Path(path)
    if p.is_dir():
        return [str(p), [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in sorted(p.rglob("*")) if f.is_file()]]
    if not p.exists():
        return [str(p), "missing"]
    st = p.stat()
    return [str(p), st.st_size, st.st_mtime_ns]


def case_key(case: Any, options: Any) -> str:
    """sha256 over the case's input files (stamps), vocabularies, the options and the engine version."""
    from organsegbench import __version__

    payload = {
        "format": CACHE_FORMAT, "engine": __version__, "case": case.id,
        "reference": file_stamp(case.reference),
        "predictions": {m: file_stamp(p) for m, p in sorted(case.predictions.items())},
        "vocabularies": dict(sorted(case.vocabularies.items())),
        "options": dataclasses.asdict(options),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def cache_file(out_dir: Path, case_id: str) -> Path:
    """``OUT/cache/<safe case id>.parquet`` (a short hash keeps distinct ids distinct after sanitising)."""
    safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", case_id)
    if safe != case_id:
        safe += "-" + hashlib.sha1(case_id.encode()).hexdigest()[:8]
    return Path(out_dir) / "cache" / f"{safe}.parquet"


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Tidy columns first, ``value`` as float, every other column as text (stable Parquet schema)."""
    df = df.copy()
    for col in TIDY_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan if col == "value" else ""
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype(float)
    for col in df.columns:
        if col != "value":
            df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    rest = [c for c in df.columns if c not in TIDY_COLUMNS]
    return df[list(TIDY_COLUMNS) + rest]


def load(path: Path, key: str) -> pd.DataFrame | None:
    """The cached rows when ``path`` exists and was written with ``key``; else None."""
    if not path.is_file():
        return None
    try:
        df = pd.read_parquet(path)
    except Exception:  # a half-written or foreign file: recompute
        return None
    if "cache_key" not in df.columns or len(df) == 0 or (df["cache_key"] != key).any():
        return None
    return df


def save(path: Path, rows: pd.DataFrame, key: str) -> None:
    """Write the case's rows with their key (atomically: temp file then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    normalise(rows.assign(cache_key=key)).to_parquet(tmp, index=False)
    tmp.replace(path)
