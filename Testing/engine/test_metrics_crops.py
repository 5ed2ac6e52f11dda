"""Splitting a bounding box with far-apart foreground into pieces: coverage, and unchanged metric values."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic

from organsegbench import metrics as M
from organsegbench.metrics import crops

medpy_binary = pytest.importorskip("medpy.metric.binary")
surface_distance = pytest.importorskip("surface_distance")

SHAPE = (30, 48, 48)
SP = (2.0, 0.8, 0.8)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split even small test volumes, with 4-voxel blocks."""
    monkeypatch.setattr(crops, "SPLIT_MIN_VOXELS", 0)
    monkeypatch.setattr(crops, "BLOCK", 4)


def _organ_and_islands() -> np.ndarray:
    m = synthetic.sphere(SHAPE, (20.0, 12.0, 12.0), 9.0, SP)
    m[25:28, 40:44, 40:45] = True  # far island
    m[1:3, 44:47, 2:4] = True  # another one, in another corner
    return m


def test_pieces_cover_every_voxel_once(small_blocks: None) -> None:
    m = _organ_and_islands()
    pieces = crops.split_crop(m, (0, 0, 0))
    assert len(pieces) == 3
    rebuilt = np.zeros(SHAPE, dtype=np.int32)
    for piece, off in pieces:
        rebuilt[tuple(slice(o, o + n) for o, n in zip(off, piece.shape, strict=True))] += piece
    np.testing.assert_array_equal(rebuilt, m.astype(np.int32))
    assert sum(p.size for p, _ in pieces) < 0.5 * m.size


def test_overlapping_groups_are_merged(small_blocks: None) -> None:
    m = np.zeros(SHAPE, dtype=bool)
    m[2:28, 2:6, 2:46] = True  # a long bar ...
    m[2:28, 2:46, 2:6] = True  # ... and another: an L whose box holds the island below
    m[20:24, 30:34, 30:34] = True  # island inside the L's box
    m[0:2, 44:48, 44:48] = True  # island outside it, in the corner
    pieces = crops.split_crop(m, (0, 0, 0))
    assert sum(int(p.sum()) for p, _ in pieces) == int(m.sum())
    boxes = [[(o, o + n) for o, n in zip(off, p.shape, strict=True)] for p, off in pieces]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not crops._overlap(boxes[i], boxes[j])


def test_small_or_single_group_crops_are_not_split(small_blocks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    one = synthetic.sphere(SHAPE, (30.0, 19.0, 19.0), 10.0, SP)
    assert len(crops.split_crop(one, (0, 0, 0))) == 1
    monkeypatch.setattr(crops, "SPLIT_MIN_VOXELS", 10**9)
    assert len(crops.split_crop(_organ_and_islands(), (0, 0, 0))) == 1


def test_metrics_with_pieces_equal_medpy_and_surface_distance(small_blocks: None) -> None:
    ref = synthetic.sphere(SHAPE, (21.0, 13.0, 12.0), 9.0, SP)
    pred = _organ_and_islands()
    assert len(crops.split_crop(pred, (0, 0, 0))) == 3
    for name in ("hd", "hd95", "assd"):
        assert M.METRICS[name].function(ref, pred, SP) == pytest.approx(
            getattr(medpy_binary, name)(pred, ref, SP), rel=1e-12), name
        # the islands are the reference here: the probe runs over several pieces
        assert M.METRICS[name].function(pred, ref, SP) == pytest.approx(
            getattr(medpy_binary, name)(ref, pred, SP), rel=1e-12), name
    sd = surface_distance.compute_surface_distances(ref, pred, SP)
    for tol in (0.8, 2.0, 30.0):
        assert M.nsd(ref, pred, SP, tol) == pytest.approx(surface_distance.compute_surface_dice_at_tolerance(sd, tol))
