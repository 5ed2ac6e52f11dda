"""CLI: `organsegbench segment`, `organsegbench models`, `organsegbench weights …`, and text-prompt checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import synthetic
from tiny_models import ct_volume, save_tiny_sam

from organsegbench.cli import main
from organsegbench.errors import DependencyError, OrganSegBenchError, UnknownNameError
from organsegbench.models import registry
from organsegbench.prompts import Box2D, PromptSet

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.models, pytest.mark.usefixtures("model_env")]


@pytest.fixture
def ct_file(tmp_path):
    from organsegbench.io import write_image

    p = tmp_path / "ct.nii.gz"
    write_image(synthetic.image(ct_volume(), spacing_xyz=(0.8, 0.8, 2.5)), p)
    return p


def test_segment_cli_with_box_and_slices(tmp_path, ct_file, capsys):
    w = save_tiny_sam(tmp_path / "tiny.pth")
    out = tmp_path / "liver.nii.gz"
    rc = main(["segment", str(ct_file), "--model", "sam", "--weights", str(w), "--box", "1,14,10,40,30",
               "--slices", "0:2", "--name", "liver", "--window", "50,300", "--device", "cpu", "--no-progress", "--out", str(out)])
    assert rc == 0
    from organsegbench.io import read_image

    lab = read_image(out)
    assert lab.shape == (4, 48, 64)
    assert [bool(lab.array[k].any()) for k in range(4)] == [True, True, True, False]
    prov = json.loads((tmp_path / "liver.nii.gz.provenance.json").read_text())
    assert prov["labels"] == {"1": "liver"} and prov["notes"]["slice_range"] == [0, 2]
    assert prov["notes"]["intensity"] == {"kind": "ct_window", "level_hu": 50.0, "width_hu": 300.0}
    assert "liver" in capsys.readouterr().out


def test_segment_cli_prompt_file(tmp_path, ct_file):
    from organsegbench.prompts import Box2D

    w = save_tiny_sam(tmp_path / "tiny.pth")
    pf = tmp_path / "p.json"
    PromptSet(boxes=[Box2D(2, 5, 5, 30, 30, label=3, name="spleen")]).save(pf)
    out = tmp_path / "m.nrrd"
    assert main(["segment", str(ct_file), "--model", "medsam", "--weights", str(w), "--prompts", str(pf),
                 "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    assert out.is_file()


def test_segment_cli_errors(tmp_path, ct_file, capsys):
    out = tmp_path / "x.nii.gz"
    assert main(["segment", str(ct_file), "--model", "sma", "--box", "1,1,1,5,5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'sma'" in err and "sam" in err
    assert main(["segment", str(ct_file), "--model", "sam", "--box", "1,1,1,5,5", "--device", "cpu",
                 "--out", str(out)]) == 2
    assert "organsegbench weights download sam_vit_b" in capsys.readouterr().err
    assert main(["segment", str(ct_file), "--model", "sam", "--box", "1,2", "--out", str(out)]) == 2
    assert "cannot parse box" in capsys.readouterr().err
    assert main(["segment", str(ct_file), "--model", "sam", "--box", "1,1,1,5,5", "--window", "40",
                 "--out", str(out)]) == 2
    assert "LEVEL,WIDTH" in capsys.readouterr().err
    assert main(["segment", str(ct_file), "--model", "segvol", "--text", ",", "--out", str(out)]) == 2
    assert "empty" in capsys.readouterr().err
    assert not out.exists()


def test_models_and_weights_cli(tmp_path, capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(registry.names())
    assert rows["sam"]["weights_present"] == [] and rows["sam"]["package_installed"] is True
    assert main(["models"]) == 0
    assert main(["weights", "list"]) == 0
    assert "sam_vit_b" in capsys.readouterr().out
    junk = tmp_path / "j.pth"
    junk.write_bytes(b"xx")
    assert main(["weights", "import", "sam_vit_b", str(junk)]) == 2
    assert "matches no other known checkpoint" in capsys.readouterr().err
    assert main(["weights", "download", "medsam_vit_b"]) == 2
    assert "no direct download URL" in capsys.readouterr().err


def test_text_prompts_are_checked_before_anything_runs():
    img = synthetic.image(ct_volume(shape=(2, 16, 16)))
    seg = registry.create("segvol", device="cpu")
    with pytest.raises(OrganSegBenchError, match="empty text prompt"):
        seg.segment(img, PromptSet(text=["  "]))
    with pytest.raises(UnknownNameError, match="livr") as err:
        seg.segment(img, PromptSet(text=["livr"]))
    assert "liver" in err.value.hint
    with pytest.raises(DependencyError, match="SegVol is not installed"):
        seg.segment(img, PromptSet(text=["Liver"]))
    with pytest.raises(DependencyError, match="no SAT command was configured"):
        registry.create("sat", device="cpu").segment(img, PromptSet(text=["spleen"]))
    with pytest.raises(OrganSegBenchError, match="does not take box"):
        registry.create("sat", device="cpu").segment(img, PromptSet(boxes=[Box2D(0, 1, 1, 2, 2)]))


def test_registry_lists_every_adapter_with_capabilities():
    for name in registry.names():
        caps = registry.capabilities(name)
        assert caps.name == name and caps.dims in ("2d", "3d") and caps.prompt_kinds
        assert caps.code_licence and caps.weights_licence
    assert np.all([registry.capabilities(n).dims == "2d" for n in ("sam", "medsam", "sam2")])


def test_every_adapter_satisfies_the_segmenter_protocol():
    from organsegbench.models.protocol import Segmenter

    for name in registry.names():
        assert isinstance(registry.create(name, device="cpu"), Segmenter), name


def test_models_table_shows_modalities_and_gpu_need(capsys, monkeypatch):
    """The capabilities a user chooses a model by (issue: modalities, GPU need) are in the table, not only in --json."""
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "model" in line and "dims" in line)
    assert "modalities" in header and "GPU" in header
    sam_row = next(line for line in out.splitlines() if line.strip("│ ").startswith("sam "))
    assert "CT,MR,PET" in sam_row and "recommended" in sam_row


def test_a_later_run_on_the_same_slices_decodes_from_the_disk_cache(tmp_path, ct_file):
    """Each CLI (and Slicer) run is a new process: the disk cache keeps "never re-encode" true across runs, and
    gives the same masks as encoding afresh."""
    from organsegbench.io import read_image

    w = save_tiny_sam(tmp_path / "tiny.pth")

    def run(box, out, *extra):
        assert main(["segment", str(ct_file), "--model", "sam", "--weights", str(w), "--box", box, "--device",
                     "cpu", "--no-progress", "--out", str(tmp_path / out), *extra]) == 0
        prov = json.loads((tmp_path / f"{out}.provenance.json").read_text())
        return read_image(tmp_path / out).array, prov["notes"]["embedding_cache"]

    _, first = run("1,14,10,40,30", "a.nii.gz")
    assert first["slices_encoded"] == 1 and first["slices_from_disk"] == 0 and first["disk"].endswith("embeddings")
    cached, second = run("1,5,5,30,25", "b.nii.gz")
    assert second["slices_encoded"] == 0 and second["slices_from_disk"] == 1
    fresh, off = run("1,5,5,30,25", "c.nii.gz", "--embedding-cache-gb", "0")
    assert off["slices_encoded"] == 1 and off["disk"] is None
    np.testing.assert_array_equal(cached, fresh)
