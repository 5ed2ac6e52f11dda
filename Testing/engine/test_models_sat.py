"""SAT as an external component: a stand-in for SAT's entry point (written here from SAT's published inference
code: MONAI Orientation(RAS) -> Spacing(1,1,3) -> CropForeground, per-label masks saved with an identity affine)
is run through the adapter's subprocess path, and the masks must land on the right voxels of the input grid."""

from __future__ import annotations

import sys
import textwrap

import pytest
import synthetic
from tiny_models import ct_volume

from organsegbench.errors import DependencyError, OrganSegBenchError
from organsegbench.models import registry
from organsegbench.models.protocol import CancelToken, RunCancelled
from organsegbench.prompts import PromptSet

pytest.importorskip("monai")
pytestmark = [pytest.mark.models, pytest.mark.usefixtures("model_env")]

FAKE_SAT = textwrap.dedent('''
    import argparse, json, os, sys, time
    from pathlib import Path
    import numpy as np, nibabel as nib
    import monai.transforms as T
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets_jsonl"); ap.add_argument("--rcd_dir"); ap.add_argument("--sleep", type=float, default=0)
    ap.add_argument("--marker")
    a = ap.parse_args()
    if a.marker:
        Path(a.marker).write_text("started")
    time.sleep(a.sleep)
    tr = T.Compose([T.LoadImaged(keys=["image"]), T.EnsureChannelFirstd(keys=["image"]),
                    T.Orientationd(axcodes="RAS", keys=["image"]),
                    T.Spacingd(keys=["image"], pixdim=(1, 1, 3), mode="bilinear"),
                    T.CropForegroundd(keys=["image"], source_key="image")])
    for line in open(a.datasets_jsonl):
        d = json.loads(line)
        img = np.asarray(tr({"image": d["image"]})["image"])[0]
        sid = os.path.basename(d["image"]).replace(".nii.gz", "")
        out = Path(a.rcd_dir) / d["dataset"] / f"seg_{sid}"
        out.mkdir(parents=True, exist_ok=True)
        rules = {"liver": img > 120, "body": img > -300}
        for label in d["label"]:
            m = rules.get(label.lower(), np.zeros_like(img, bool)).astype(float)
            nib.save(nib.nifti2.Nifti1Image(m, np.eye(4)), str(out / f"{label.lower()}.nii.gz"))
    ''')


@pytest.fixture
def sat_cmd(tmp_path):
    f = tmp_path / "fake_sat.py"
    f.write_text(FAKE_SAT)
    return f"{sys.executable} {f}"


def dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_sat_outputs_map_back_onto_the_input(sat_cmd):
    vol = ct_volume(shape=(12, 48, 64))
    img = synthetic.image(vol, spacing_xyz=(0.8, 0.8, 2.5), origin=(-30, 12, 40))
    seg = registry.create("sat", sat_command=sat_cmd)
    res = seg.segment(img, PromptSet(text=["Liver"]))
    assert res.labels == {1: "liver"} and res.labelmap.shape == img.shape
    truth = vol > 120
    got = res.labelmap.array == 1
    assert dice(got, truth) > 0.85, dice(got, truth)
    # a flipped or shifted mapping would miss: the same mask mirrored left-right overlaps much less
    assert dice(got[:, :, ::-1], truth) < dice(got, truth) - 0.3
    assert res.provenance["notes"]["sat_grid"]["affine_ras"][2][2] == 3.0
    assert "--rcd_dir" in res.provenance["notes"]["sat_command"]


def test_sat_errors_and_cancel(sat_cmd, tmp_path):
    import threading

    img = synthetic.image(ct_volume(shape=(4, 24, 24)))
    with pytest.raises(DependencyError, match="no SAT command") as err:
        registry.create("sat").segment(img, PromptSet(text=["liver"]))
    assert "ORGANSEGBENCH_SAT_COMMAND" in err.value.hint
    with pytest.raises(OrganSegBenchError, match="SAT exited with code"):
        registry.create("sat", sat_command=f"{sys.executable} -c 'import sys; sys.exit(3)'").segment(
            img, PromptSet(text=["liver"]))
    token = CancelToken()
    marker = tmp_path / "started"

    def cancel_when_started():
        while not marker.exists():
            threading.Event().wait(0.05)
        token.cancel()

    t = threading.Thread(target=cancel_when_started, daemon=True)
    t.start()
    with pytest.raises(RunCancelled):
        registry.create("sat", sat_command=f"{sat_cmd} --sleep 30 --marker {marker}").segment(
            img, PromptSet(text=["liver"]), cancel=token)
    t.join(5)
    assert marker.exists()  # SAT had started and was killed mid-run
