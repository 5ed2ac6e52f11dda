"""Analyses with known answers: robustness (worst 5 %), generalisation (spread), fairness (ANOVA/KW/BH/effect)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from organsegbench.analysis import (
    assign_groups,
    epsilon_squared,
    eta_squared,
    fairness,
    generalisation,
    overall_fairness,
    worst_cases,
    worst_count,
)
from organsegbench.errors import ConfigError


def tidy(rows: list[tuple]) -> pd.DataFrame:
    """(case, model, structure, metric, value) tuples -> tidy table with status ok."""
    df = pd.DataFrame(rows, columns=["case", "model", "structure", "metric", "value"])
    return df.assign(reason="", status="ok")


# ------------------------------------------------------------------------------------------------ robustness
@pytest.mark.parametrize(("n", "expected"), [(0, 0), (1, 1), (12, 1), (19, 1), (20, 1), (39, 1), (40, 2), (100, 5)])
def test_worst_count(n: int, expected: int) -> None:
    assert worst_count(n) == expected


def test_worst_cases_dice_low_hd95_high_and_undefined_counted() -> None:
    rows = []
    for i in range(40):
        rows.append((f"c{i:02d}", "m", "liver", "dice", 0.9 - 0.001 * i))
        rows.append((f"c{i:02d}", "m", "liver", "hd95", math.nan if i == 5 else float(i)))
    out = worst_cases(tidy(rows))  # default metrics dsc + hd95; "dice" rows are read as dsc
    dice = out[out.metric == "dsc"]
    assert list(dice["case"]) == ["c39", "c38"]  # n = floor(0.05 * 40) = 2, lowest first
    assert dice["value"].iloc[0] == pytest.approx(0.9 - 0.039)
    hd = out[out.metric == "hd95"]
    assert list(hd["case"]) == ["c39"]  # 39 ranked values (one NaN) -> n = 1
    assert hd["n_cases"].iloc[0] == 39 and hd["n_undefined"].iloc[0] == 1
    assert list(hd["rank"]) == [1]


def test_worst_cases_per_model_and_structure_and_skips_missing_status() -> None:
    rows = [(f"c{i}", m, s, "dice", v) for i, v in enumerate([0.5, 0.7, 0.9]) for m in ("a", "b")
            for s in ("x", "y")]
    t = tidy(rows)
    t.loc[(t.case == "c0") & (t.model == "b"), "status"] = "missing"
    out = worst_cases(t, metrics=("dice",))
    assert len(out) == 4
    assert set(out[out.model == "a"]["case"]) == {"c0"}
    assert set(out[out.model == "b"]["case"]) == {"c1"}  # c0 is missing for model b, never ranked


def test_worst_cases_all_undefined_group_is_reported_not_dropped() -> None:
    rows = [(f"c{i}", "m", "kidney", "hd95", math.nan) for i in range(4)]
    rows += [(f"c{i}", "m", "liver", "hd95", float(i)) for i in range(4)]
    out = worst_cases(tidy(rows), metrics=("hd95",)).set_index("structure")
    assert out.loc["liver", "case"] == "c3"
    assert pd.isna(out.loc["kidney", "case"]) and out.loc["kidney", "n_undefined"] == 4
    assert out.loc["kidney", "n_listed"] == 0


# ------------------------------------------------------------------------------------------------ generalisation
def test_generalisation_std_and_iqr_across_structure_means() -> None:
    means = {"s1": 0.9, "s2": 0.8, "s3": 0.7, "s4": 0.6}
    rows = [(c, "m", s, "dice", v + d) for s, v in means.items() for c, d in (("a", 0.05), ("b", -0.05))]
    g = generalisation(tidy(rows), metrics=("dice",))
    assert len(g) == 1
    r = g.iloc[0]
    v = np.array(list(means.values()))
    assert r["std"] == pytest.approx(np.std(v, ddof=1))
    assert r["iqr"] == pytest.approx(0.825 - 0.675)
    assert r["worst_structure"] == "s4" and r["n_structures"] == 4


# ------------------------------------------------------------------------------------------------ fairness
def test_effect_sizes_on_a_tiny_known_example() -> None:
    a, b = np.array([1.0, 2, 3]), np.array([4.0, 5, 6])
    assert eta_squared([a, b]) == pytest.approx(13.5 / 17.5)
    h = stats.kruskal(a, b).statistic
    assert h == pytest.approx(12 / 42 * (36 / 3 + 225 / 3) - 21)
    assert epsilon_squared(h, 6) == pytest.approx(h / 5)


def test_bands_default_age_and_bmi() -> None:
    age = assign_groups(pd.Series([20, 29.9, 30, 59, 60, 65, None]), [20, 30, 40, 50, 60])
    assert list(age) == ["20–30", "20–30", "30–40", "50–60", "50–60", None, None]
    bmi = assign_groups(pd.Series([20.9, 21, 23.9, 24, 30]), [-math.inf, 21, 24, math.inf])
    assert list(bmi) == ["<21", "21–24", "21–24", ">=24", ">=24"]
    with pytest.raises(ConfigError, match="increasing"):
        assign_groups(pd.Series([1]), [3, 2])


def _cohort(values_by_sex: dict[str, list[float]], structures=("liver", "spleen", "kidney_left")):
    rows, cases = [], []
    i = 0
    for sex, values in values_by_sex.items():
        for v in values:
            cid = f"c{i:02d}"
            cases.append({"case": cid, "sex": sex, "age": 25 + i, "bmi": 22.0})
            for k, s in enumerate(structures):
                rows.append((cid, "m", s, "dice", v - 0.01 * k))
            i += 1
    return tidy(rows), pd.DataFrame(cases)


def test_fairness_clearly_different_groups_are_significant(rng: np.random.Generator) -> None:
    t, cases = _cohort({"F": list(0.70 + 0.01 * rng.standard_normal(10)),
                        "M": list(0.90 + 0.01 * rng.standard_normal(10))})
    f = fairness(t, cases, attributes=["sex"])
    assert len(f) == 6 and f["testable"].all()
    assert f["significant"].astype(bool).all()
    anova = f[f.test == "anova"]
    assert (anova["effect_size"] > 0.9).all() and (anova["effect_size_name"] == "eta2").all()
    ov = overall_fairness(f)
    assert (ov["overall_fairness"] == 0.0).all() and (ov["n_significant"] == 3).all()


def test_fairness_identical_groups_are_not_significant() -> None:
    vals = [0.80, 0.82, 0.85, 0.78, 0.90, 0.83]
    t, cases = _cohort({"F": vals, "M": vals[::-1]})
    f = fairness(t, cases, attributes=["sex"])
    assert not f["significant"].astype(bool).any()
    assert f[f.test == "anova"]["p"].to_numpy() == pytest.approx(1.0)
    assert (overall_fairness(f)["overall_fairness"] == 1.0).all()


def test_fairness_bh_correction_matches_textbook_bh(rng: np.random.Generator) -> None:
    structures = [f"s{k}" for k in range(6)]
    rows, cases = [], []
    for i in range(16):
        sex = "F" if i % 2 else "M"
        cases.append({"case": f"c{i}", "sex": sex})
        for k, s in enumerate(structures):  # growing group shift -> a spread of p-values
            rows.append((f"c{i}", "m", s, "dice", 0.8 + 0.02 * rng.standard_normal() + (0.006 * k if sex == "F" else 0)))
    f = fairness(tidy(rows), pd.DataFrame(cases), attributes=["sex"])
    for test in ("anova", "kruskal"):
        sub = f[f.test == test]
        p = sub["p"].to_numpy()
        order = np.argsort(p)
        m = len(p)
        adj = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
        expected = np.empty(m)
        expected[order] = np.minimum(adj, 1)
        np.testing.assert_allclose(sub["p_fdr"].to_numpy(), expected)
        assert list(sub["significant"].astype(bool)) == list(expected <= 0.05)


def test_fairness_one_group_is_not_testable_with_reason() -> None:
    t, cases = _cohort({"F": [0.8, 0.7, 0.9, 0.85]})
    f = fairness(t, cases, attributes=["sex"])
    assert not f["testable"].any()
    assert f["reason"].str.contains("fewer than 2 groups").all()
    assert f["reason"].str.contains("F=4").all()
    ov = overall_fairness(f)
    assert (ov["status"] == "not testable").all() and ov["overall_fairness"].isna().all()
    # one sentence, not the same reason repeated for every structure
    assert ov["not_testable"].iloc[0] == "all 3 structures: " + f["reason"].iloc[0]


def test_not_testable_reasons_are_grouped_and_name_their_structures() -> None:
    from organsegbench.analysis.fairness import group_reasons

    rows = pd.DataFrame({"structure": ["liver", "spleen", "aorta", "kidney_left"],
                         "reason": ["one group", "one group", "all values identical", "one group"]})
    assert group_reasons(rows, n_structures=5) == ("aorta: all values identical; "
                                                  "kidney_left, liver, spleen: one group")
    many = pd.DataFrame({"structure": [f"s{i:02d}" for i in range(10)], "reason": ["one group"] * 10})
    assert group_reasons(many, n_structures=12, max_names=3) == "s00, s01, s02 and 7 more: one group"


def test_fairness_small_group_is_excluded_explicitly() -> None:
    t, cases = _cohort({"F": [0.8, 0.7, 0.9], "M": [0.6, 0.65, 0.7], "X": [0.5]})
    f = fairness(t, cases, attributes=["sex"])
    assert f["testable"].all() and (f["n_groups"] == 2).all()
    assert (f["excluded_groups"] == "X (n=1)").all()


def test_fairness_age_bands_configurable_and_out_of_band_counted() -> None:
    t, cases = _cohort({"F": [0.8, 0.7, 0.9, 0.6], "M": [0.85, 0.75, 0.65, 0.7]})
    cases["age"] = [22, 24, 26, 28, 45, 47, 49, 70]
    f = fairness(t, cases, attributes=["age"], bands={"age": [20, 40, 60]})
    assert (f["group_sizes"] == "20–40=4; 40–60=3").all()
    # age 70 is known but outside every band: counted as out of band, not as a missing attribute
    assert (f["n_out_of_band"] == 1).all() and (f["n_missing_attribute"] == 0).all()
    cases["age"] = [22, 24, 26, 28, 45, 47, None, 70]
    f = fairness(t, cases, attributes=["age"], bands={"age": [20, 40, 60]})
    assert (f["n_out_of_band"] == 1).all() and (f["n_missing_attribute"] == 1).all()


def test_fairness_numeric_attribute_without_bands_says_how_to_band() -> None:
    t, cases = _cohort({"F": [0.8, 0.7, 0.9], "M": [0.6, 0.65, 0.7]})
    cases["weight"] = [50.0, 61.0, 72.0, 83.0, 94.0, 105.0]
    f = fairness(t, cases, attributes=["weight"])
    assert not f["testable"].any() and f["reason"].str.contains("without band edges").all()
    banded = fairness(t, cases, attributes=["weight"], bands={"weight": [40, 75, 110]})
    assert banded["testable"].all() and (banded["group_sizes"] == "40–75=3; 75–110=3").all()


def test_fairness_unknown_attribute_names_close_match() -> None:
    t, cases = _cohort({"F": [0.8, 0.7], "M": [0.6, 0.5]})
    with pytest.raises(ConfigError, match="'sexx'") as exc:
        fairness(t, cases, attributes=["sexx"])
    assert "sex" in exc.value.hint
