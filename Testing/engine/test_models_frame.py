"""Model frame (reorientation by axis permutation/flip) and the embedding cache, without any network."""

from __future__ import annotations

import numpy as np
import pytest

from organsegbench.errors import OrganSegBenchError
from organsegbench.models.embedding_cache import EmbeddingCache, slice_key
from organsegbench.models.frame import Frame
from organsegbench.prompts import Box2D, Box3D, Point2D, PromptSet


def test_identity_frame():
    f = Frame.from_direction(np.eye(3), (3, 4, 5))
    assert f.is_identity and f.model_shape == (3, 4, 5)
    ps = PromptSet(boxes=[Box2D(1, 0, 0, 2, 2)])
    assert f.prompts_to_model(ps) is ps


def test_flip_roundtrip_and_prompt_mapping():
    a = np.arange(3 * 4 * 5).reshape(3, 4, 5)
    f = Frame.from_direction(np.diag([-1.0, 1.0, -1.0]), a.shape)  # x and z reversed
    assert f.flip == (True, False, True) and f.perm == (0, 1, 2)
    m = f.to_model(a)
    np.testing.assert_array_equal(m, a[::-1, :, ::-1])
    np.testing.assert_array_equal(f.from_model(m), a)
    ps = f.prompts_to_model(PromptSet(boxes=[Box2D(0, 1, 2, 3, 3)], points=[Point2D(2, 4, 1)]))
    b = ps.boxes[0]
    assert (b.slice, b.xyxy) == (2, (1, 2, 3, 3))  # x: 4-3..4-1, z: 2-0
    p = ps.points[0]
    assert (p.slice, p.x, p.y) == (0, 0, 1)


def test_permuted_acquisition():
    # a sagittal-like grid: array axis 0 (k) runs along x, axis 2 (i) along z
    d = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # columns: i->z, j->y, k->x
    a = np.random.default_rng(0).random((3, 4, 5))
    f = Frame.from_direction(d, a.shape)
    assert f.model_shape == (5, 4, 3)
    np.testing.assert_array_equal(f.from_model(f.to_model(a)), a)
    with pytest.raises(OrganSegBenchError, match="non-axial"):
        f.prompts_to_model(PromptSet(boxes=[Box2D(0, 0, 0, 1, 1)]))
    b3 = f.prompts_to_model(PromptSet(boxes3d=[Box3D(0, 2, 1, 2, 3, 4)])).boxes3d[0]
    assert (b3.k0, b3.k1, b3.y0, b3.y1, b3.x0, b3.x1) == (3, 4, 1, 2, 0, 2)


def test_degenerate_direction():
    with pytest.raises(OrganSegBenchError, match="degenerate"):
        Frame.from_direction(np.array([[1.0, 1.0, 0], [0, 0, 0], [0, 0, 1.0]]), (2, 2, 2))


def test_embedding_cache_lru_and_keys():
    c = EmbeddingCache(max_items=2)
    k = [slice_key(np.full((2, 2), v, np.uint8), "sam", "abc") for v in range(3)]
    assert len(set(k)) == 3
    assert slice_key(np.zeros((2, 2), np.uint8), "sam", "abc") != slice_key(np.zeros((2, 2), np.uint8), "sam", "abd")
    assert slice_key(np.zeros((2, 2), np.uint8), "sam", "abc") != slice_key(np.zeros((2, 2), np.uint8), "medsam", "abc")
    c.put(k[0], 0)
    c.put(k[1], 1)
    assert c.get(k[0]) == 0  # k0 becomes most recent
    c.put(k[2], 2)  # evicts k1
    assert c.get(k[1]) is None and c.get(k[0]) == 0 and c.get(k[2]) == 2
    assert (c.hits, c.misses) == (3, 1)


def test_disk_cache_drops_damaged_files(tmp_path):
    torch = pytest.importorskip("torch")
    c = EmbeddingCache(disk_dir=tmp_path)
    key = slice_key(np.zeros((2, 2), np.uint8), "sam", None)
    c.put(key, {"features": torch.ones(2)})
    fresh = EmbeddingCache(disk_dir=tmp_path)
    assert torch.equal(fresh.get(key)["features"], torch.ones(2))
    f = next(tmp_path.rglob("*.pt"))
    f.write_bytes(b"garbage")
    assert EmbeddingCache(disk_dir=tmp_path).get(key) is None
    assert not f.exists()


def test_disk_cache_stays_within_its_byte_bound_dropping_the_least_recently_used(tmp_path):
    import os

    torch = pytest.importorskip("torch")
    keys = [slice_key(np.full((2, 2), i, np.uint8), "sam", None) for i in range(5)]
    c = EmbeddingCache(max_items=1, disk_dir=tmp_path, max_disk_bytes=10**9)
    for i, k in enumerate(keys[:3]):
        c.put(k, {"features": torch.zeros(1000)})
        os.utime(c._disk_path(k), (1000 + i, 1000 + i))  # k0 oldest
    one = c._disk_path(keys[0]).stat().st_size
    fresh = EmbeddingCache(max_items=1, disk_dir=tmp_path, max_disk_bytes=int(3.5 * one))
    assert fresh.get(keys[0]) is not None and fresh.disk_hits == 1  # a hit makes k0 the most recent
    fresh.put(keys[3], {"features": torch.zeros(1000)})  # 4 files > 3.5: the least recent (k1) goes
    left = {k for k in keys if fresh._disk_path(k).exists()}
    assert left == {keys[0], keys[2], keys[3]}
    assert sum(f.stat().st_size for f in tmp_path.rglob("*.pt")) <= 3.5 * one


def test_out_of_memory_on_gpu_falls_back_to_cpu_or_errors():
    torch = pytest.importorskip("torch")
    from organsegbench.models.base import BaseSegmenter, RunContext
    from organsegbench.models.protocol import Capabilities

    class Fake(BaseSegmenter):
        capabilities = Capabilities(name="fake", dims="3d", prompt_kinds=frozenset({"none"}))

        def __init__(self, **kw):
            super().__init__(**kw)
            self.devices = []

        def ensure_loaded(self, device):
            self.devices.append(device)

        def predict(self, volume, prompts, ctx):
            if ctx.device != "cpu":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
            return np.ones(volume.shape, np.uint16), {1: "x"}

    seg = Fake()
    ctx = RunContext(device="cuda", batch_size=4)
    lab, _ = seg.run_with_fallback(np.zeros((2, 2, 2)), PromptSet(), ctx)
    assert lab.all() and seg.devices == ["cuda", "cpu"]
    assert ctx.notes["oom_fallback"] == "cuda->cpu" and ctx.batch_size == 1
    strict = Fake(cpu_fallback=False)
    with pytest.raises(OrganSegBenchError, match="ran out of memory on cuda") as err:
        strict.run_with_fallback(np.zeros((2, 2, 2)), PromptSet(), RunContext(device="cuda", batch_size=1,
                                                                              cpu_fallback=False))
    assert "--device cpu" in err.value.hint
