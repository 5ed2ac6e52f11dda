"""Image-embedding cache for the SAM family.

Each slice is encoded once per ``(slice content hash, model, weights sha256, preprocessing)``: an in-memory LRU
(bounded by entry count) plus an optional disk cache (one ``.pt`` file of tensors per key, read back with
``torch.load(weights_only=True)``, bounded in bytes: the least recently used files go first). A new box or point on
an already encoded slice never re-encodes it, in the same run (memory) or a later one (disk: what the command line
and the Slicer module use, ``$ORGANSEGBENCH_CACHE/embeddings``, since each of their runs is a new process).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def slice_key(pixels: np.ndarray, model: str, weights_sha256: str | None, recipe: str = "") -> str:
    """Cache key: sha256 over the slice's bytes, shape and dtype, the model, the weights hash and the recipe."""
    h = hashlib.sha256()
    a = np.ascontiguousarray(pixels)
    h.update(str((a.shape, a.dtype.str, model, weights_sha256 or "unknown-weights", recipe)).encode())
    h.update(a.tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """LRU of embeddings (any object; dicts of tensors for disk caching).

    Args:
        max_items: in-memory bound (entries); the least recently used is dropped first.
        disk_dir: optional folder for a persistent cache (``None`` = memory only).
        max_disk_bytes: bound of the disk cache; after a write the least recently used files (by modification
            time, refreshed on every hit) are deleted until the folder is within it.
    """

    def __init__(self, max_items: int = 64, disk_dir: str | Path | None = None,
                 max_disk_bytes: int = 8 * 1024**3) -> None:
        self.max_items = max(1, int(max_items))
        self.disk_dir = Path(disk_dir) if disk_dir else None
        self.max_disk_bytes = int(max_disk_bytes)
        self.disk_hits = 0
        self._disk_total: int | None = None  # bytes on disk, scanned once, then kept up to date
        self._mem: OrderedDict[str, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._mem)

    def __contains__(self, key: str) -> bool:
        return key in self._mem or (self.disk_dir is not None and self._disk_path(key).is_file())

    def _disk_path(self, key: str) -> Path:
        assert self.disk_dir is not None
        return self.disk_dir / key[:2] / f"{key}.pt"

    def get(self, key: str) -> Any | None:
        """The cached embedding or ``None`` (counted as a miss)."""
        if key in self._mem:
            self._mem.move_to_end(key)
            self.hits += 1
            return self._mem[key]
        if self.disk_dir is not None and self._disk_path(key).is_file():
            import torch

            try:
                value = torch.load(self._disk_path(key), map_location="cpu", weights_only=True)
            except Exception as exc:  # a damaged cache file is dropped, not fatal
                log.warning("dropping unreadable embedding cache file %s: %s", self._disk_path(key), exc)
                self._disk_path(key).unlink(missing_ok=True)
            else:
                os.utime(self._disk_path(key))  # recently used: evicted last
                self._remember(key, value)
                self.hits += 1
                self.disk_hits += 1
                return value
        self.misses += 1
        return None

    def put(self, key: str, value: Any) -> None:
        """Store an embedding (and write it to disk when a disk folder is set)."""
        self._remember(key, value)
        if self.disk_dir is not None:
            import torch

            path = self._disk_path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            torch.save(_to_cpu(value), tmp)
            tmp.replace(path)
            if self._disk_total is None:
                self._disk_total = sum(f[1] for f in self._disk_files())
            else:
                self._disk_total += path.stat().st_size
            if self._disk_total > self.max_disk_bytes:
                self.evict()

    def _disk_files(self) -> list[tuple[float, int, str]]:
        """``(mtime, bytes, path)`` of every cache file."""
        assert self.disk_dir is not None
        files = []
        for sub in os.scandir(self.disk_dir):
            if sub.is_dir():
                files.extend((e.stat().st_mtime, e.stat().st_size, e.path) for e in os.scandir(sub.path)
                             if e.name.endswith(".pt") and e.is_file())
        return files

    def evict(self) -> int:
        """Delete the least recently used disk files until the folder fits ``max_disk_bytes``; returns how many."""
        if self.disk_dir is None or not self.disk_dir.is_dir():
            return 0
        files = self._disk_files()
        total = sum(f[1] for f in files)
        removed = 0
        for _, size, path in sorted(files):
            if total <= self.max_disk_bytes:
                break
            Path(path).unlink(missing_ok=True)
            total -= size
            removed += 1
        self._disk_total = total
        return removed

    def _remember(self, key: str, value: Any) -> None:
        self._mem[key] = value
        self._mem.move_to_end(key)
        while len(self._mem) > self.max_items:
            self._mem.popitem(last=False)

    def clear(self) -> None:
        """Empty the in-memory part (the disk part stays)."""
        self._mem.clear()


def _to_cpu(value: Any) -> Any:
    if hasattr(value, "detach"):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value
