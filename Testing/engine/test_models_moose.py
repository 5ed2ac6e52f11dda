"""MOOSE end-to-end on CPU through ``moosez.moose`` with a fake nnU-Net task folder imported into our cache."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic
from fake_nnunet import write_model_folder, zip_folder
from tiny_models import ct_volume

from organsegbench.errors import OrganSegBenchError
from organsegbench.models import registry
from organsegbench.models import weights as W

torch = pytest.importorskip("torch")
pytest.importorskip("moosez")
pytestmark = pytest.mark.models

LABELS = {1: "liver", 2: "spleen", 3: "kidney_left"}


@pytest.fixture(autouse=True)
def _env(model_env, monkeypatch):
    import moosez.models as mm
    import moosez.system as ms

    monkeypatch.setattr(ms, "MODELS_DIRECTORY_PATH", ms.MODELS_DIRECTORY_PATH)
    monkeypatch.setattr(mm.Model.__init__, "__defaults__", mm.Model.__init__.__defaults__)


def test_moose_runs_through_its_own_api(tmp_path):
    ds = write_model_folder(tmp_path / "build", "Dataset123_Organs", "nnUNetTrainer", LABELS, spacing=3.0)
    W.import_weights("moose_clin_ct_organs", zip_folder(ds, tmp_path / "organs.zip"), allow_unverified=True)
    img = synthetic.image(ct_volume(shape=(16, 32, 32)), spacing_xyz=(2.0, 2.0, 3.0), origin=(-5, 3, 7))
    res = registry.create("moose", device="cpu").segment(img)
    assert res.labelmap.shape == img.shape and res.labelmap.origin == img.origin
    assert res.labels == LABELS
    assert set(np.unique(res.labelmap.array)) <= {0, 1, 2, 3}
    assert res.provenance["weights_verified"] is False


def test_moose_missing_weights():
    img = synthetic.image(ct_volume(shape=(4, 16, 16)))
    with pytest.raises(OrganSegBenchError, match="moose_clin_ct_organs") as err:
        registry.create("moose", device="cpu").segment(img)
    assert "weights download moose_clin_ct_organs" in err.value.hint
