"""Prompts: boxes, 3D boxes, clipping, prompt files, and the reference-mask protocol."""

from __future__ import annotations

import json

import numpy as np
import pytest
import synthetic

from organsegbench.errors import EmptyMaskError, InputFileError, OrganSegBenchError
from organsegbench.prompts import (
    Box2D,
    Box3D,
    Point2D,
    PromptProtocol,
    PromptSet,
    clip_box,
    parse_box_arg,
    prompts_from_mask,
)


def test_box3d_expands_to_one_box_per_slice():
    b = Box3D(2, 5, y0=10, y1=20, x0=3, x1=8, label=2, name="liver")
    boxes = b.to_slices()
    assert [x.slice for x in boxes] == [2, 3, 4, 5]
    assert all(x.xyxy == (3, 10, 8, 20) and x.label == 2 and x.name == "liver" for x in boxes)
    ps = PromptSet(boxes3d=[b], boxes=[Box2D(9, 0, 0, 1, 1)])
    assert ps.slices() == [2, 3, 4, 5, 9]
    assert ps.kinds == {"box"}


def test_clip_box_partly_outside_is_clipped():
    b = clip_box(Box2D(0, -5, 3, 40, 12), (1, 16, 32))
    assert b.xyxy == (0.0, 3, 31.0, 12)


@pytest.mark.parametrize("box", [Box2D(0, 40, 0, 50, 5), Box2D(0, -9, -9, -1, 5), Box2D(3, 0, 0, 2, 2)])
def test_clip_box_wholly_outside_raises(box):
    with pytest.raises(OrganSegBenchError, match="outside the image"):
        clip_box(box, (2, 16, 32))


def test_inverted_box_raises():
    with pytest.raises(OrganSegBenchError, match="x1<x0"):
        Box2D(0, 5, 0, 1, 3)


def test_parse_box_arg():
    assert parse_box_arg("3,1,2,10,20") == Box2D(3, 1, 2, 10, 20)
    assert parse_box_arg("3:6,1,2,10,20") == Box3D(3, 6, 2, 20, 1, 10)
    with pytest.raises(OrganSegBenchError, match="cannot parse box"):
        parse_box_arg("3,1,2")
    with pytest.raises(OrganSegBenchError, match="cannot parse box"):
        parse_box_arg("a,1,2,3,4")


def test_prompt_file_roundtrip(tmp_path):
    ps = PromptSet(boxes=[Box2D(1, 2, 3, 4, 5, label=2, name="spleen")], points=[Point2D(1, 3, 4, False)],
                   boxes3d=[Box3D(0, 2, 1, 5, 1, 5)], text=["liver"], protocol={"seed": 3}, image_shape=(4, 8, 8))
    f = tmp_path / "p.json"
    ps.save(f)
    back = PromptSet.load(f)
    assert back == ps
    assert json.loads(f.read_text())["version"] == 1


def test_prompt_file_errors(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        PromptSet.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"boxes": [{"slice": 0, "x0": 1}]}))
    with pytest.raises(InputFileError, match=r"boxes\[0\]"):
        PromptSet.load(bad)
    bad.write_text(json.dumps({"boxs": []}))
    with pytest.raises(InputFileError, match="unknown key"):
        PromptSet.load(bad)


def _two_blob_mask():
    m = np.zeros((6, 20, 30), dtype=np.uint8)
    m[1:4, 2:6, 3:8] = 255  # left blob, slices 1..3
    m[2, 10:14, 20:25] = 255  # right blob, slice 2 only
    m[2, 0, 0] = 40  # lossy-compression noise below threshold
    return m


def test_binarise_first_ignores_lossy_noise():
    m = _two_blob_mask()
    ps = prompts_from_mask(m, (1.0, 1.0, 1.0), PromptProtocol(threshold=127))
    box2 = [b for b in ps.boxes if b.slice == 2]
    assert len(box2) == 1 and box2[0].xyxy == (3, 2, 24, 13)
    # without thresholding, the noise voxel at (0, 0) would stretch the box: the protocol prevents it
    noisy = prompts_from_mask(m, (1.0, 1.0, 1.0), PromptProtocol(threshold=0))
    assert [b for b in noisy.boxes if b.slice == 2][0].xyxy == (0, 0, 24, 13)


def test_per_component_boxes_and_recorded_protocol():
    ps = prompts_from_mask(_two_blob_mask(), (2.0, 1.0, 1.0),
                           PromptProtocol(threshold=127, boxes="per_component"), name="kidney")
    on2 = sorted(b.xyxy for b in ps.boxes if b.slice == 2)
    assert on2 == [(3, 2, 7, 5), (20, 10, 24, 13)]
    assert ps.protocol["boxes"] == "per_component" and ps.protocol["threshold"] == 127
    assert ps.protocol["n_boxes"] == len(ps.boxes) == 4
    assert all(b.name == "kidney" for b in ps.boxes)


def test_margin_in_mm_uses_in_plane_spacing():
    m = synthetic.box((3, 40, 40), (1, 10, 10), (2, 20, 30))
    ps = prompts_from_mask(m, (3.0, 0.5, 2.0), PromptProtocol(margin_mm=4.0))
    (b,) = ps.boxes
    # x spacing 2 mm -> 2 voxels; y spacing 0.5 mm -> 8 voxels
    assert b.xyxy == (8, 2, 31, 27)


def test_jitter_is_seeded_and_bounded():
    m = synthetic.box((3, 40, 40), (0, 10, 10), (3, 20, 30))
    p = PromptProtocol(jitter_mm=2.0, seed=7)
    a = prompts_from_mask(m, (1, 1, 1), p)
    b = prompts_from_mask(m, (1, 1, 1), p)
    c = prompts_from_mask(m, (1, 1, 1), PromptProtocol(jitter_mm=2.0, seed=8))
    assert a.boxes == b.boxes
    assert a.boxes != c.boxes
    for box in a.boxes:
        assert np.allclose(box.xyxy, (10, 10, 29, 19), atol=2.0)
        assert not np.allclose(box.xyxy, (10, 10, 29, 19))


def test_slice_modes():
    m = np.zeros((10, 20, 20), dtype=np.uint8)
    m[2, 5:8, 5:8] = 1
    m[6, 4:12, 3:15] = 1  # gap at slices 3..5
    gt = prompts_from_mask(m, (1, 1, 1), PromptProtocol(slices="gt"))
    assert [b.slice for b in gt.boxes] == [2, 6]
    ext = prompts_from_mask(m, (1, 1, 1), PromptProtocol(slices="extent"))
    assert [b.slice for b in ext.boxes] == [2, 3, 4, 5, 6]
    assert ext.protocol["n_slices_without_reference"] == 3
    by_slice = {b.slice: b.xyxy for b in ext.boxes}
    assert by_slice[2] == (5, 5, 7, 7)  # tight box where there is ground truth
    assert by_slice[4] == (3, 4, 14, 11)  # 3D in-plane box on slices without ground truth
    b3 = prompts_from_mask(m, (1, 1, 1), PromptProtocol(slices="box3d"))
    assert {b.xyxy for b in b3.boxes} == {(3, 4, 14, 11)}
    key = prompts_from_mask(m, (1, 1, 1), PromptProtocol(slices="key"))
    assert [b.slice for b in key.boxes] == [6]


def test_label_selection_and_empty_mask():
    m = synthetic.random_blobs((8, 24, 24), 3, seed=1)
    ps = prompts_from_mask(m, (1, 1, 1), PromptProtocol(label=2))
    fg = m == 2
    for b in ps.boxes:
        rows = np.flatnonzero(fg[b.slice].any(axis=1))
        assert (b.y0, b.y1) == (rows[0], rows[-1])
    with pytest.raises(EmptyMaskError, match="label 9"):
        prompts_from_mask(m, (1, 1, 1), PromptProtocol(label=9))


def test_margin_clips_to_image():
    m = synthetic.box((1, 10, 10), (0, 0, 0), (1, 3, 3))
    (b,) = prompts_from_mask(m, (1, 1, 1), PromptProtocol(margin_mm=5)).boxes
    assert b.xyxy == (0, 0, 7, 7)


def test_bad_protocol_values():
    with pytest.raises(OrganSegBenchError, match="slice mode"):
        PromptProtocol(slices="all")
    with pytest.raises(OrganSegBenchError, match="must be >= 0"):
        PromptProtocol(margin_mm=-1)
