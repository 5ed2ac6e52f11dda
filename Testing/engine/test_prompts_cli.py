"""CLI `organsegbench prompts`: box prompts from a reference mask under a recorded protocol, then `segment`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import synthetic

from organsegbench.cli import main
from organsegbench.download import sha256_file
from organsegbench.io import write_image
from organsegbench.prompts import PromptSet


@pytest.fixture
def reference(tmp_path):
    """A (10, 40, 50) label map on 0.8 x 0.8 x 2.5 mm voxels: liver (label 5) on slices 2-6 with a gap on slice 4,
    spleen (label 1) as two blobs on slice 3."""
    lab = np.zeros((10, 40, 50), np.uint8)
    lab[2:7, 10:20, 12:30] = 5
    lab[4] = 0
    lab[3, 30:34, 2:6] = 1
    lab[3, 30:34, 40:45] = 1
    p = tmp_path / "ref.nii.gz"
    write_image(synthetic.image(lab, spacing_xyz=(0.8, 0.8, 2.5)), p)
    return p


def _run(ref, out, *extra):
    assert main(["prompts", str(ref), "--vocabulary", "total", "--out", str(out), *extra]) == 0
    return PromptSet.load(out)


def test_per_slice_boxes_with_margin_are_recorded(tmp_path, reference, capsys):
    ps = _run(reference, tmp_path / "p.json", "--structure", "liver", "--margin-mm", "1.6")
    assert [b.slice for b in ps.boxes] == [2, 3, 5, 6]  # gt slices only: the gap slice 4 gets no box
    b = ps.boxes[0]
    assert (b.x0, b.y0, b.x1, b.y1) == (10.0, 8.0, 31.0, 21.0)  # 1.6 mm = 2 voxels on every side
    assert b.name == "liver" and ps.image_shape == (10, 40, 50)
    rec = ps.protocol
    assert rec["label"] == 5 and rec["margin_mm"] == 1.6 and rec["slices"] == "gt"
    assert rec["reference"]["sha256"] == sha256_file(reference)
    assert "4 boxes on 4 slices" in capsys.readouterr().out


def test_extent_prompts_the_gap_slice_and_says_so(tmp_path, reference):
    ps = _run(reference, tmp_path / "p.json", "--structure", "liver", "--slices", "extent")
    assert [b.slice for b in ps.boxes] == [2, 3, 4, 5, 6]
    assert ps.protocol["n_slices_without_reference"] == 1


def test_components_and_seeded_jitter(tmp_path, reference):
    a = _run(reference, tmp_path / "a.json", "--structure", "spleen", "--boxes", "per_component",
             "--jitter-mm", "2", "--seed", "3")
    b = _run(reference, tmp_path / "b.json", "--structure", "spleen", "--boxes", "per_component",
             "--jitter-mm", "2", "--seed", "3")
    c = _run(reference, tmp_path / "c.json", "--structure", "spleen", "--boxes", "per_component",
             "--jitter-mm", "2", "--seed", "4")
    assert len(a.boxes) == 2 and a.boxes == b.boxes and a.boxes != c.boxes
    assert json.loads((tmp_path / "a.json").read_text())["protocol"]["seed"] == 3


@pytest.mark.parametrize(("extra", "message"), [
    ([], "choose one with --structure"),
    (["--structure", "livr"], "unknown structure 'livr'\n  fix: did you mean: liver"),
    (["--structure", "pancreas"], "no voxel.*no prompt can be derived"),
])
def test_bad_structure_names_fail_clearly(tmp_path, reference, capsys, extra, message):
    import re

    assert main(["prompts", str(reference), "--vocabulary", "total", "--out", str(tmp_path / "p.json"),
                 *extra]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "p.json").exists()


def test_prompts_drive_segment_and_travel_into_its_provenance(tmp_path, reference, model_env):
    from tiny_models import ct_volume, save_tiny_sam

    ct = tmp_path / "ct.nii.gz"
    write_image(synthetic.image(ct_volume(shape=(10, 40, 50)), spacing_xyz=(0.8, 0.8, 2.5)), ct)
    pf = tmp_path / "p.json"
    _run(reference, pf, "--structure", "liver")
    out = tmp_path / "medsam.nii.gz"
    assert main(["segment", str(ct), "--model", "medsam", "--weights", str(save_tiny_sam(tmp_path / "w.pth")),
                 "--prompts", str(pf), "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    prov = json.loads((tmp_path / "medsam.nii.gz.provenance.json").read_text())
    assert prov["prompts"]["protocol"]["reference"]["sha256"] == sha256_file(reference)
    assert prov["labels"] == {"1": "liver"}
    from organsegbench.io import read_segmentation

    seg = read_segmentation(out)  # the segments sidecar names the output without a vocabulary
    assert seg.segments[1].name == "liver" and seg.segments[1].type["value"] == "10200004"
