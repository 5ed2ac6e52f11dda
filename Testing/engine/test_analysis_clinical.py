"""Clinical utility with known numbers: volume error, cardiac phenotypes, heart-rate source, Bland-Altman."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pydicom
import pytest
import synthetic

from organsegbench.analysis import (
    bland_altman,
    bland_altman_plot,
    bland_altman_table,
    cardiac_phenotypes,
    cardiac_phenotypes_from_labelmaps,
    cohort_cardiac_phenotypes,
    heart_rate_from_header,
    resolve_heart_rate,
    volume_error,
    volume_error_summary,
    volumes_long,
)


def test_volume_error_rate_from_volume_rows() -> None:
    t = pd.DataFrame([("c1", "reference", "liver", "volume_ml", 100.0), ("c1", "a", "liver", "volume_ml", 90.0),
                      ("c1", "b", "liver", "volume_ml", 125.0), ("c1", "reference", "spleen", "volume_ml", 0.0),
                      ("c1", "a", "spleen", "volume_ml", 3.0)],
                     columns=["case", "model", "structure", "metric", "value"])
    v = volume_error(t).set_index(["model", "structure"])
    assert v.loc[("a", "liver"), "volume_error_rate"] == pytest.approx(0.10)
    assert v.loc[("b", "liver"), "volume_error_rate"] == pytest.approx(0.25)
    assert math.isnan(v.loc[("a", "spleen"), "volume_error_rate"])  # undefined for an empty reference
    s = volume_error_summary(volume_error(t)).set_index(["model", "structure"])
    assert s.loc[("a", "liver"), "mean"] == pytest.approx(0.10) and s.loc[("a", "spleen"), "n"] == 0


def test_volume_error_from_metric_registry_volume_rows() -> None:
    rows = []
    for model, vp in (("a", 80.0), ("b", 110.0)):
        rows += [("c1", model, "liver", "volume_ref", 100.0), ("c1", model, "liver", "volume_pred", vp)]
    t = pd.DataFrame(rows, columns=["case", "model", "structure", "metric", "value"])
    v = volume_error(t).set_index("model")["volume_error_rate"]
    assert v["a"] == pytest.approx(0.2) and v["b"] == pytest.approx(0.1)
    vl = volumes_long(t)
    assert len(vl[vl.model == "reference"]) == 1  # the reference volume is listed once


def test_cardiac_phenotypes_known_numbers() -> None:
    p = cardiac_phenotypes(150.0, 60.0, 160.0, 80.0, heart_rate_bpm=70.0)
    assert p["LVSV"] == 90.0 and p["RVSV"] == 80.0
    assert p["LVEF"] == pytest.approx(60.0) and p["RVEF"] == pytest.approx(50.0)
    assert p["LVCO"] == pytest.approx(6.3)  # 90 mL x 70 /min = 6.3 L/min
    assert math.isnan(cardiac_phenotypes(150.0, 60.0, 160.0, 80.0)["LVCO"])


def test_cardiac_phenotypes_from_labelmaps_uses_voxel_volume() -> None:
    shape = (20, 20, 20)
    ed = np.zeros(shape, np.uint8)
    ed[synthetic.box(shape, (0, 0, 0), (10, 10, 10))] = 1  # 1000 voxels
    ed[synthetic.box(shape, (10, 10, 10), (20, 20, 18))] = 2  # 800 voxels
    es = np.zeros(shape, np.uint8)
    es[synthetic.box(shape, (0, 0, 0), (10, 10, 4))] = 1  # 400 voxels
    es[synthetic.box(shape, (10, 10, 10), (20, 20, 14))] = 2  # 400 voxels
    sp = (1.5, 1.5, 2.0)  # 4.5 uL per voxel
    p = cardiac_phenotypes_from_labelmaps(synthetic.image(ed, sp), synthetic.image(es, sp), 1, 2,
                                          header={"HeartRate": "60"})
    assert p["LVEDV"] == pytest.approx(4.5) and p["LVESV"] == pytest.approx(1.8)
    assert p["RVEDV"] == pytest.approx(3.6) and p["RVEF"] == pytest.approx(50.0)
    assert p["heart_rate_bpm"] == 60.0 and "HeartRate (0018,1088)" in p["heart_rate_source"]
    assert p["LVCO"] == pytest.approx(2.7 * 60 / 1000)


def test_heart_rate_sources(tmp_path) -> None:
    ds = pydicom.Dataset()
    ds.HeartRate = 72
    assert heart_rate_from_header(ds) == (72.0, "DICOM HeartRate (0018,1088)")
    ds2 = pydicom.Dataset()
    ds2.NominalInterval = 800
    hr, src = heart_rate_from_header(ds2)
    assert hr == pytest.approx(75.0) and "NominalInterval (0018,1062) = 800 ms" in src
    hr, src = heart_rate_from_header({"0018|1062": "1000"})  # SimpleITK metadata keys
    assert hr == pytest.approx(60.0)
    hr, src = heart_rate_from_header({})
    assert math.isnan(hr) and src.startswith("unavailable")
    assert resolve_heart_rate(65.0, ds) == (65.0, "given")
    # a real DICOM file on disk (read via pydicom)
    f = tmp_path / "frame.dcm"
    fm = pydicom.dataset.FileMetaDataset()
    fm.MediaStorageSOPClassUID = pydicom.uid.MRImageStorage
    fm.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    fm.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    out = pydicom.FileDataset(str(f), {}, file_meta=fm, preamble=b"\0" * 128)
    out.NominalInterval = 750
    out.save_as(str(f), enforce_file_format=True)
    hr, src = heart_rate_from_header(tmp_path)
    assert hr == pytest.approx(80.0) and "NominalInterval" in src


def test_bland_altman_known_numbers() -> None:
    ba = bland_altman([1, 2, 3, 4, math.nan], [2, 3, 5, 4, 7])
    sd = math.sqrt(2 / 3)
    assert ba["n"] == 4 and ba["bias"] == pytest.approx(1.0) and ba["sd"] == pytest.approx(sd)
    assert ba["loa_lower"] == pytest.approx(1 - 1.96 * sd) and ba["loa_upper"] == pytest.approx(1 + 1.96 * sd)
    fig = bland_altman_plot([1, 2, 3, 4], [2, 3, 5, 4], title="t", unit="mL")
    ys = sorted(line.get_ydata()[0] for line in fig.axes[0].get_lines())
    assert ys == pytest.approx([1 - 1.96 * sd, 1.0, 1 + 1.96 * sd])
    same = bland_altman_plot([1, 2, 3], [2, 3, 4])  # every difference 1: one line, no collapsed limits
    assert [line.get_ydata()[0] for line in same.axes[0].get_lines()] == [1.0]


def _cardiac_cohort(lv_pred_scale: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, cases = [], []
    for k in range(4):
        for phase, lv, rv in (("ED", 150.0 + k, 160.0), ("ES", 60.0 + k, 80.0)):
            case = f"s{k}_{phase}"
            cases.append({"case": case, "subject": f"s{k}", "phase": phase.lower(), "heart_rate": 60 + k})
            for model, scale in (("reference", 1.0), ("m", lv_pred_scale)):
                rows.append((case, model, "heart_ventricle_left", "volume_ml", lv * scale))
                rows.append((case, model, "heart_ventricle_right", "volume_ml", rv))
    t = pd.DataFrame(rows, columns=["case", "model", "structure", "metric", "value"]).assign(status="ok")
    return t, pd.DataFrame(cases)


def test_cohort_cardiac_phenotypes_and_bland_altman() -> None:
    t, cases = _cardiac_cohort(1.1)
    ph = cohort_cardiac_phenotypes(t, cases)
    assert set(ph["phenotype"]) == {"LVEDV", "LVESV", "RVEDV", "RVESV", "LVSV", "RVSV", "LVEF", "RVEF", "LVCO"}
    ref = ph[(ph.model == "reference") & (ph.subject == "s0")].set_index("phenotype")["value"]
    assert ref["LVEF"] == pytest.approx(60.0) and ref["LVCO"] == pytest.approx(90 * 60 / 1000)
    assert (ph["heart_rate_source"] == "given").all()
    ba = bland_altman_table(ph, key="subject", quantity="phenotype", unit_col="unit").set_index("quantity")
    assert ba.loc["LVEDV", "bias"] == pytest.approx(np.mean([15.0, 15.1, 15.2, 15.3]))
    assert ba.loc["RVEDV", "bias"] == pytest.approx(0.0) and ba.loc["LVEF", "unit"] == "%"


def test_cohort_cardiac_phenotypes_absent_without_phases() -> None:
    t, cases = _cardiac_cohort(1.0)
    assert cohort_cardiac_phenotypes(t, cases.drop(columns=["phase"])).empty
    no_hr = cohort_cardiac_phenotypes(t, cases.drop(columns=["heart_rate"]))
    lvco = no_hr[no_hr.phenotype == "LVCO"]
    assert lvco["value"].isna().all() and (lvco["reason"] == "no heart rate").all()
    assert no_hr["heart_rate_source"].str.startswith("unavailable").all()
