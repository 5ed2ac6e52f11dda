"""Child-process job entry points: user errors exit 2 with message + fix; a stand-in model runs end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import synthetic

from organsegbench import jobs
from organsegbench.io import read_image, write_image
from organsegbench.models import registry
from organsegbench.models.protocol import ModelResult
from organsegbench.runner import parse_progress


def test_unknown_model_exits_2_naming_it(tmp_path, capsys) -> None:
    write_image(synthetic.image(np.zeros((4, 5, 6), np.int16)), tmp_path / "in.nii.gz")
    code = jobs.main(["segment", "--model", "totalsegmentater", "--input", str(tmp_path / "in.nii.gz"),
                      "--output", str(tmp_path / "out.nii.gz")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown model 'totalsegmentater'" in err and "totalsegmentator" in err
    assert not (tmp_path / "out.nii.gz").exists()


def test_missing_input_exits_2(tmp_path, capsys) -> None:
    code = jobs.main(["segment", "--model", "sam", "--input", str(tmp_path / "nope.nii.gz"),
                      "--output", str(tmp_path / "out.nii.gz")])
    assert code == 2 and "nope.nii.gz" in capsys.readouterr().err


def test_segment_job_with_stand_in_model_writes_labels_and_progress(tmp_path, capsys, monkeypatch) -> None:
    img = synthetic.image(np.zeros((4, 5, 6), np.int16), spacing_xyz=(0.7, 0.8, 2.5))
    write_image(img, tmp_path / "in.nii.gz")

    class Threshold:
        def segment(self, image, prompts, output="prompted", progress=None, **kw):
            progress(1, 2)
            assert prompts.text == ["liver"]
            return ModelResult(image.with_array(np.ones(image.shape, np.uint8)), {1: "liver"}, {"model": "t"})

    monkeypatch.setattr(registry, "create", lambda name, **kw: Threshold())
    code = jobs.main(["segment", "--model", "t", "--input", str(tmp_path / "in.nii.gz"), "--output",
                      str(tmp_path / "out.nii.gz"), "--text", "liver"])
    assert code == 0
    out = read_image(tmp_path / "out.nii.gz")
    assert out.shape == img.shape and out.spacing == pytest.approx(img.spacing) and out.array.all()
    side = json.loads((tmp_path / "out.nii.gz.provenance.json").read_text())
    assert side["labels"] == {"1": "liver"}
    fractions = [e.fraction for e in map(parse_progress, capsys.readouterr().out.splitlines()) if e]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
