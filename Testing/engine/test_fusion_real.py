"""Fusion on the seed's real multi-model aorta slices (skipped when ../shared/data is absent).

TrainDataset/AO/<case>/<MODEL>_label_<case>.png for MODEL in SAM, SAM2, MedSAM, MedAM2 (MedSAM2), SAT, TotalSeg;
8-bit 0/255 PNGs read as binary one-slice masks (> 127).
"""

from __future__ import annotations

import numpy as np
import pytest

from organsegbench.fusion import fuse
from organsegbench.surfaces.inputs import read_picture_mask

MODELS = ("SAM", "SAM2", "MedSAM", "MedAM2", "SAT", "TotalSeg")


def _train_cases(root):
    return sorted(p for p in (root / "Data_Sample" / "TrainDataset" / "AO").iterdir() if p.is_dir())


def test_fusion_of_six_models_on_every_train_slice(aorta):
    cases = _train_cases(aorta)
    assert len(cases) == 5
    for case in cases:
        masks = [read_picture_mask(case / f"{m}_label_{case.name}.png")[0] for m in MODELS]
        votes = sum(m.array.astype(int) for m in masks)
        maj = fuse(masks, "majority", names=list(MODELS))
        np.testing.assert_array_equal(maj.array > 0, votes >= 4)  # strict majority of 6; 3-3 ties -> background
        mean = fuse(masks, "mean", names=list(MODELS), threshold=0.5)
        np.testing.assert_array_equal(mean.array > 0, votes >= 3)
        st = fuse(masks, "staple", names=list(MODELS))
        assert st.array.any() and st.labelmap.spacing == (1.0, 1.0, 1.0)
        sens = {m: st.per_model[m]["staple_sensitivity"] for m in MODELS}
        assert all(0.0 <= v <= 1.0 for v in sens.values())
        # the model STAPLE trusts least must also agree least with the STAPLE consensus
        worst = min(sens, key=sens.get)
        agree = {m: st.per_model[m]["sensitivity_vs_consensus"] for m in MODELS}
        assert agree[worst] == pytest.approx(min(agree.values()), abs=0.05)
