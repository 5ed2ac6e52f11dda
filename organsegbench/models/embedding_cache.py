"""Image-embedding cache for the SAM family.

Each slice is encoded once per ``(slice content hash, model, weights sha256, preprocessing)``: an in-memory LRU
(bounded by entry count) plus an optional disk cache (one ``.pt`` file of tensors per key, read back with
``torch.load(weights_only=True)``). A new box or point on an already encoded slice never re-encodes it.
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
    """

    def __init__(self, max_items: int = 64, disk_dir: str | Path | None = None) -> None:
        self.max_items = max(1, int(max_items))
        self.disk_dir = Path(disk_dir) if disk_dir else None
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
                self._remember(key, value)
                self.hits += 1
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
