"""The HTML report: self-contained, every section present, gallery thumbnails, cardiac phenotypes with the
heart-rate source, Bland-Altman plots."""

from __future__ import annotations

import base64
import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import synthetic
from test_cohort import make_cohort

from organsegbench.cohort import EvalOptions, evaluate_cohort
from organsegbench.report import build_html

PNG = b"\x89PNG\r\n\x1a\n"


def _images(html: str) -> list[str]:
    return re.findall(r"<img src='([^']*)'", html)


def _assert_self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:|file:|/)", html)
    for uri in _images(html):
        assert uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == PNG


def test_report_of_synthetic_cohort(tmp_path: Path) -> None:
    path = make_cohort(tmp_path / "c", n=12)
    r = evaluate_cohort(path, tmp_path / "out", EvalOptions(metrics=("dsc", "hd95")), workers=1, progress=False)
    html = (tmp_path / "out" / "report.html").read_text()
    _assert_self_contained(html)
    for heading in ("1. Accuracy", "2. Robustness", "Worst-case gallery", "3. Fairness", "4. Generalisation",
                    "5. Clinical utility", "Bland–Altman of structure volumes", "Provenance"):
        assert heading in html, heading
    n_worst = int((r.analyses["worst_cases"]["metric"] == "dsc").sum())
    n_hd = int((r.analyses["worst_cases"]["metric"] == "hd95").sum())
    assert n_worst == n_hd == 6  # 2 models x 3 structures, n = 1 of 12 cases each
    assert html.count("<figure>") == n_worst + n_hd and "<h4>by hd95</h4>" in html
    assert "thumbnail unavailable" not in html
    assert len(_images(html)) >= 2 + n_worst + n_hd + 6  # 2 distributions, thumbnails, 6 Bland-Altman plots
    assert "overall_fairness" in html and "η²" in html


def test_fairness_section_names_untested_attributes_and_groups_not_testable_reasons(tmp_path: Path) -> None:
    """A single-sex cohort with a 'gender' column: the report says sex is not testable once per attribute (not once
    per structure) and that 'gender' was not compared (it is not a default attribute) and how to add it."""
    path = make_cohort(tmp_path / "c", n=4, extra_attrs={"sex": "F", "gender": lambda i: "wm"[i % 2]})
    evaluate_cohort(path, tmp_path / "out", EvalOptions(metrics=("dsc",)), workers=1, progress=False)
    html = (tmp_path / "out" / "report.html").read_text()
    section = html[html.index("3. Fairness"):html.index("4. Generalisation")]
    assert "not compared: <b>gender</b>" in section and "--attributes age bmi sex gender" in section
    assert "<li>sex: all 3 structures: fewer than 2 groups" in section
    assert section.count("liver: fewer than 2 groups") == 0
    assert ">None<" not in section  # 'significant' of an untestable row is a dash, not Python's None


def test_build_html_from_tables_without_files_explains_missing_thumbnails() -> None:
    rows = [(f"c{i}", m, "liver", "dsc", 0.5 + 0.04 * i) for i in range(5) for m in ("a", "b")]
    t = pd.DataFrame(rows, columns=["case", "model", "structure", "metric", "value"]).assign(
        reason="", status="ok", prediction_file="/nonexistent/pred.nii.gz")
    cases = pd.DataFrame({"case": [f"c{i}" for i in range(5)], "image": "", "reference": "/nonexistent/ref.nii.gz"})
    from organsegbench.cohort.outputs import run_analyses

    analyses = run_analyses(t, cases)
    html = build_html(t, cases, analyses, {"name": "tables", "n_cases": 5, "models": ["a", "b"],
                                           "structures": ["liver"], "missing_pairs": []})
    _assert_self_contained(html)
    assert html.count("thumbnail unavailable") == 2  # worst DSC case of models a and b (no HD95 in the table)
    assert "No subject attributes" in html


def _write(arr: np.ndarray, path: Path, meta: dict[str, str] | None = None) -> None:
    img = synthetic.image(arr, (1.5, 1.5, 8.0)).to_sitk()
    for k, v in (meta or {}).items():
        img.SetMetaData(k, v)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))


def test_cardiac_cohort_phenotypes_heart_rate_source_and_bland_altman(tmp_path: Path) -> None:
    """4 subjects x (ED, ES); TotalSegmentator v1 labels 46 (LV) and 48 (RV); the model over-segments the LV at ED.
    Subject s0 has a given heart rate; the others' come from the image header's NominalInterval."""
    shape = (8, 40, 40)
    rows = []
    for k in range(4):
        for phase, r_lv, r_rv in (("ED", 12.0 + k, 10.0), ("ES", 8.0 + k, 7.0)):
            cid = f"s{k}_{phase}"
            ref = np.zeros(shape, np.uint8)
            ref[synthetic.sphere(shape, (32, 30, 22), r_lv, (8.0, 1.5, 1.5))] = 46
            ref[synthetic.sphere(shape, (32, 30, 42), r_rv, (8.0, 1.5, 1.5))] = 48
            pred = ref.copy()
            if phase == "ED":
                pred[synthetic.sphere(shape, (32, 30, 22), r_lv + 1.5, (8.0, 1.5, 1.5)) & (ref == 0)] = 46
            _write(ref.astype(np.float32) + 1, tmp_path / f"img/{cid}.nrrd", {"NominalInterval": "800"})
            _write(ref, tmp_path / f"ref/{cid}.nii.gz")
            _write(pred, tmp_path / f"m/{cid}.nii.gz")
            rows.append({"id": cid, "image": f"img/{cid}.nrrd", "reference": f"ref/{cid}.nii.gz",
                         "pred:m": f"m/{cid}.nii.gz", "vocab:reference": "total_v1", "vocab:m": "total_v1",
                         "subject": f"s{k}", "phase": phase, "heart_rate": 60 if k == 0 else ""})
    cohort = tmp_path / "cardiac.csv"
    with cohort.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    r = evaluate_cohort(cohort, tmp_path / "out", EvalOptions(metrics=("dsc",)), workers=1, progress=False)
    assert r.summary["options"]["harmonise"] == "canonical"  # cardiac cohort: ventricles kept apart
    ph = r.analyses["cardiac_phenotypes"]
    src = ph.drop_duplicates("subject").set_index("subject")["heart_rate_source"]
    assert src["s0"] == "given" and "NominalInterval (0018,1062) = 800 ms" in src["s1"]
    ref = ph[(ph.model == "reference") & (ph.subject == "s1")].set_index("phenotype")["value"]
    vols = r.analyses["volume_error"]
    lvedv = vols[(vols.case == "s1_ED") & (vols.structure == "heart_ventricle_left")]["ref_volume_ml"].iloc[0]
    assert ref["LVEDV"] == pytest.approx(lvedv)
    assert ref["LVEF"] == pytest.approx(100 * (ref["LVEDV"] - ref["LVESV"]) / ref["LVEDV"])
    assert ref["LVCO"] == pytest.approx(ref["LVSV"] * 75.0 / 1000)  # 60000 / 800 ms = 75 bpm
    ba = r.analyses["bland_altman_cardiac"].set_index("quantity")
    assert ba.loc["LVEDV", "bias"] > 0 and ba.loc["RVEDV", "bias"] == pytest.approx(0.0)
    assert ba.loc["LVEF", "unit"] == "%"
    html = (tmp_path / "out" / "report.html").read_text()
    _assert_self_contained(html)
    assert "Cardiac phenotypes" in html and "NominalInterval" in html and "LVEF: m vs reference" in html
    assert "no cardiac phenotypes could be computed" not in html
    # the same cohort without vocabularies: label_46/label_48 are not ventricles -> the report says why
    no_vocab = cohort.with_name("novocab.csv")
    no_vocab.write_text(cohort.read_text().replace("total_v1", ""))
    evaluate_cohort(no_vocab, tmp_path / "out2", EvalOptions(metrics=("dsc",)), workers=1, progress=False)
    html2 = (tmp_path / "out2" / "report.html").read_text()
    assert "no cardiac phenotypes could be computed" in html2 and "heart_ventricle_left" in html2


def test_bland_altman_figures_follow_the_given_order_and_limit() -> None:
    from organsegbench.report.plots import bland_altman_figures

    rows = [(c, m, s, v * f) for c, v in (("c1", 10.0), ("c2", 20.0), ("c3", 30.0))
            for s in ("liver", "spleen") for m, f in (("reference", 1.0), ("a", 1.1), ("b", 0.8))]
    long = pd.DataFrame(rows, columns=["case", "model", "structure", "value"])
    figs = bland_altman_figures(long, key="case", quantity="structure", limit=3,
                                order=[("spleen", "b"), ("liver", "a"), ("nope", "a"), ("spleen", "a")])
    assert [t for t, _ in figs] == ["spleen: b vs reference", "liver: a vs reference", "spleen: a vs reference"]
    assert all(u.startswith("data:image/png;base64,") for _, u in figs)
    assert len(bland_altman_figures(long, key="case", quantity="structure", limit=2)) == 2


def _has_colour(uri: str, rgb: tuple[int, int, int], tol: int = 30) -> bool:
    """True when ``rgb`` appears in the left 70 % of the PNG (the axes; the legend sits to their right)."""
    import io

    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])), format="png")[..., :3] * 255
    img = img[:, : int(img.shape[1] * 0.7)]
    return bool((np.abs(img - np.array(rgb)).max(axis=-1) < tol).any())


def test_distribution_figure_shows_each_models_single_value_in_its_colour() -> None:
    """With one case (n = 1 per box) a box plot degenerates to a black median line: the models could not be told
    apart. Each value must be visible in its model's legend colour."""
    from organsegbench.report.plots import distribution_figures

    rows = [("c1", m, s, "dsc", v) for s in ("liver", "spleen") for m, v in (("a", 0.9), ("b", 0.7))]
    table = pd.DataFrame(rows, columns=["case", "model", "structure", "metric", "value"])
    (uri,) = distribution_figures(table, "dsc")
    assert _has_colour(uri, (31, 119, 180)) and _has_colour(uri, (255, 127, 14))  # tab10 blue (a), orange (b)


def test_structure_absent_everywhere_is_named_and_plots_do_not_warn(recwarn) -> None:
    """--structures heart on an abdominal cohort: every value is 'both empty'. The report must say so instead of a
    table of dashes (and matplotlib must not warn about an empty legend)."""
    rows = [(f"c{i}", m, s, "dsc", v, r) for i in range(3) for m in ("a", "b")
            for s, v, r in (("heart", np.nan, "both empty"), ("liver", 0.9, ""))]
    rows += [(f"c{i}", m, "heart", v, 0.0, "") for i in range(3) for m in ("a", "b")
             for v in ("volume_ref", "volume_pred")]  # as evaluate writes them: 0 mL, no reason
    t = pd.DataFrame(rows, columns=["case", "model", "structure", "metric", "value", "reason"]).assign(status="ok")
    cases = pd.DataFrame({"case": ["c0", "c1", "c2"], "image": "", "reference": ""})
    from organsegbench.report.plots import distribution_figures

    assert distribution_figures(t[t["structure"] == "heart"], "dsc") == []
    assert not [w for w in recwarn.list if "legend" in str(w.message)]
    from organsegbench.cohort.outputs import run_analyses

    html = build_html(t, cases, run_analyses(t, cases),
                      {"name": "x", "n_cases": 3, "models": ["a", "b"], "missing_pairs": []})
    assert "absent from every reference and every prediction: heart" in html
    assert "liver" not in html[html.index("absent from every"):html.index("absent from every") + 120]


def test_unnamed_label_values_are_pointed_out() -> None:
    """A label value the declared vocabulary does not name becomes structure label_<n>: say where, and that the
    vocabulary may be the wrong one (a liver stored as 250 scores DSC 0 for 'liver')."""
    rows = [("c0", "a", "liver", "dsc", 0.0, ""), ("c0", "a", "label_250", "dsc", 0.0, ""),
            ("c1", "a", "liver", "dsc", 0.9, "")]
    t = pd.DataFrame(rows, columns=["case", "model", "structure", "metric", "value", "reason"]).assign(status="ok")
    cases = pd.DataFrame({"case": ["c0", "c1"], "image": "", "reference": ""})
    from organsegbench.cohort.outputs import run_analyses

    html = build_html(t, cases, run_analyses(t, cases), {"name": "x", "n_cases": 2, "models": ["a"],
                                                         "missing_pairs": []})
    assert "label_250 (c0 / a)" in html and "vocab:" in html
