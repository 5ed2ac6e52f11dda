"""Base for 2D promptable models (SAM family): slices are windowed to uint8, encoded in batches through the
embedding cache (batch halves on out-of-memory), then each slice's boxes/points are decoded to masks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from organsegbench.io.image import Image
from organsegbench.models.base import BaseSegmenter, RunContext, is_oom, window_to_uint8
from organsegbench.models.embedding_cache import EmbeddingCache, slice_key
from organsegbench.prompts import Box2D, Point2D, PromptSet


class SliceSegmenter(BaseSegmenter):
    """Adapters implement :meth:`encode` (a batch of uint8 slices -> embeddings) and :meth:`decode`
    (one embedding + that slice's prompts for one label -> boolean mask)."""

    #: identifies the preprocessing in cache keys (change it when the recipe changes)
    recipe: ClassVar[str] = "v1"

    def __init__(self, weights: str | Path | None = None, device: str = "auto", batch_size: int = 4,
                 seed: int = 0, cpu_fallback: bool = True, cache: EmbeddingCache | None = None,
                 window: tuple[float, float] | None = None, **options: Any) -> None:
        super().__init__(weights, device, batch_size, seed, cpu_fallback, **options)
        self.cache = cache if cache is not None else EmbeddingCache()
        self.window = window
        self.encoder_calls = 0  # slices encoded (for tests and benchmarks)

    # ------------------------------------------------------------------------------------------- hooks
    def encode(self, slices: list[np.ndarray], device: str) -> list[Any]:
        """Encode uint8 slices ``(H, W)``; one embedding per slice."""
        raise NotImplementedError

    def decode(self, embedding: Any, shape: tuple[int, int], boxes: list[Box2D], points: list[Point2D],
               device: str) -> np.ndarray:
        """Boolean mask ``(H, W)`` for one object on one slice."""
        raise NotImplementedError

    def preprocess(self, volume: np.ndarray, image: Image, ctx: RunContext) -> np.ndarray:
        """Window to uint8 (CT window or percentiles) and record what was done. The last result is kept for the
        same image object (a kept-loaded worker prompting one volume again skips the whole-volume windowing)."""
        modality = self.options.get("modality")
        import zlib

        # the same Image object and, guarding against in-place edits, the same voxels (CRC-32, ~15 ms per 10^7)
        key = (image, volume.shape, modality, self.window, zlib.crc32(memoryview(np.ascontiguousarray(volume))))
        memo = getattr(self, "_preprocessed", None)
        if memo is not None and memo[0][0] is image and memo[0][1:] == key[1:]:
            out, rec = memo[1], memo[2]
        else:
            out, rec = window_to_uint8(volume, modality, self.window)
            self._preprocessed = (key, out, rec)  # holds the image, so its identity cannot be reused meanwhile
        ctx.notes["intensity"] = rec
        return out

    # ------------------------------------------------------------------------------------------- run
    def _key(self, pixels: np.ndarray) -> str:
        from organsegbench.models.weights import file_sha256

        if getattr(self, "_sha_for", None) != self.weights_path:  # hash once per checkpoint, not per slice
            self._sha = file_sha256(self.weights_path) if self.weights_path and self.weights_path.is_file() else None
            self._sha_for = self.weights_path
        return slice_key(pixels, self.capabilities.name, self._sha, self.recipe)

    def embeddings(self, volume: np.ndarray, ks: list[int], ctx: RunContext) -> dict[int, Any]:
        """Embeddings of slices ``ks`` (cached ones reused, the rest encoded; the batch halves on OOM)."""
        out: dict[int, Any] = {}
        pending = []
        for k in ks:
            emb = self.cache.get(self._key(volume[k]))
            if emb is None:
                pending.append(k)
            else:
                out[k] = emb
        bs = ctx.batch_size
        i = 0
        while i < len(pending):
            ctx.check()
            batch = pending[i:i + bs]
            try:
                embs = self.encode([volume[k] for k in batch], ctx.device)
            except Exception as exc:
                if not is_oom(exc) or bs == 1:
                    raise
                self.release_memory()
                bs = max(1, len(batch) // 2)
                ctx.notes["oom_batch_size"] = bs
                continue
            self.encoder_calls += len(batch)
            for k, e in zip(batch, embs, strict=True):
                self.cache.put(self._key(volume[k]), e)
                out[k] = e
            i += len(batch)
        ctx.batch_size = bs
        return out

    def predict(self, volume: np.ndarray, prompts: PromptSet, ctx: RunContext) -> tuple[np.ndarray, dict[int, str]]:
        """Encode the prompted slices in chunks, decode each object; later label values win overlaps."""
        names = {lab: (name or f"object_{lab}") for lab, name in sorted(prompts.labels().items())}
        ks = prompts.slices()
        encoded0, disk0 = self.encoder_calls, self.cache.disk_hits
        out = np.zeros(volume.shape, dtype=np.uint16)
        chunk = max(ctx.batch_size, 1) * 4
        done = 0
        for start in range(0, len(ks), chunk):
            part = ks[start:start + chunk]
            embs = self.embeddings(volume, part, ctx)
            for k in part:
                ctx.check()
                boxes, points = prompts.for_slice(k)
                for lab in sorted({b.label for b in boxes} | {p.label for p in points}):
                    m = self.decode(embs[k], volume.shape[1:], [b for b in boxes if b.label == lab],
                                    [p for p in points if p.label == lab], ctx.device)
                    out[k][m] = lab
                done += 1
                ctx.report(done, len(ks))
        ctx.notes["overlap_rule"] = "higher label value wins"
        ctx.notes["embedding_cache"] = {"slices_encoded": self.encoder_calls - encoded0,
                                        "slices_from_disk": self.cache.disk_hits - disk0,
                                        "disk": str(self.cache.disk_dir) if self.cache.disk_dir else None}
        return out, names
