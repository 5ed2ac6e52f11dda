"""Cohort files (CSV/YAML) and their validation; the synthetic cohort builder used by the cohort/report tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import synthetic

from organsegbench.cohort import EvalOptions, load_cohort, validate_structures
from organsegbench.cohort.runner import validate_metrics, validate_vocabularies
from organsegbench.errors import ConfigError, InputFileError, UnknownNameError

SHAPE = (16, 28, 28)
SPACING_XYZ = (1.2, 1.0, 2.0)
#: blob label -> label value in the reference vocabulary "total" and model b's "moose_clin_ct_organs"
TOTAL = {1: 5, 2: 1, 3: 3}  # liver, spleen, kidney_left
MOOSE = {1: 8, 2: 15, 3: 6}


def write_nii(array: np.ndarray, path: Path, spacing=SPACING_XYZ, origin=(0.0, 0.0, 0.0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(synthetic.image(array, spacing, origin).to_sitk(), str(path))
    return path


def relabel(blobs: np.ndarray, table: dict[int, int]) -> np.ndarray:
    out = np.zeros_like(blobs)
    for k, v in table.items():
        out[blobs == k] = v
    return out


def make_cohort(root: Path, n: int = 12, fmt: str = "csv", seed: int = 7, extra_attrs: dict | None = None) -> Path:
    """``n`` cases of three random blobs (liver/spleen/kidney_left); model a = reference shifted by 0-2 voxels along
    x in the reference vocabulary, model b = shifted along y (and dilated in every third case) in MOOSE numbering;
    sex/age/bmi attributes."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        blobs = synthetic.random_blobs(SHAPE, 3, seed=100 + i)
        cid = f"case{i:02d}"
        write_nii((blobs * 40 + rng.normal(0, 5, SHAPE)).astype(np.float32), root / "img" / f"{cid}.nii.gz")
        write_nii(relabel(blobs, TOTAL), root / "ref" / f"{cid}.nii.gz")
        write_nii(relabel(np.roll(blobs, int(rng.integers(0, 3)), axis=2), TOTAL), root / "a" / f"{cid}.nii.gz")
        b = np.roll(blobs, int(rng.integers(0, 3)), axis=1)
        if i % 3 == 0:
            b = ndimage.grey_dilation(b, size=3)
        write_nii(relabel(b, MOOSE), root / "b" / f"{cid}.nii.gz")
        row = {"id": cid, "image": f"img/{cid}.nii.gz", "reference": f"ref/{cid}.nii.gz",
               "pred:a": f"a/{cid}.nii.gz", "pred:b": f"b/{cid}.nii.gz", "vocab:reference": "total",
               "vocab:a": "total", "vocab:b": "moose_clin_ct_organs", "sex": "F" if i % 2 else "M",
               "age": 22 + 3 * i, "bmi": round(19.0 + 0.6 * i, 1)}
        for k, v in (extra_attrs or {}).items():
            row[k] = v(i) if callable(v) else v
        rows.append(row)
    if fmt == "csv":
        path = root / "cohort.csv"
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return path
    import yaml

    cases = [{"id": r["id"], "image": r["image"], "reference": r["reference"],
              "predictions": {"a": r["pred:a"], "b": r["pred:b"]},
              "attributes": {k: r[k] for k in r if ":" not in k and k not in ("id", "image", "reference")},
              "vocabularies": {"b": "moose_clin_ct_organs"}} for r in rows]
    path = root / "cohort.yaml"
    path.write_text(yaml.safe_dump({"name": "synthetic", "vocabularies": {"reference": "total", "a": "total"},
                                    "cases": cases}))
    return path


def rewrite_csv(path: Path, rename: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> Path:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rename = rename or {}
    out = path.with_name("edited.csv")
    fields = [rename.get(c, c) for c in rows[0] if c not in drop]
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({rename.get(k, k): v for k, v in r.items() if k not in drop})
    return out


@pytest.fixture
def cohort_csv(tmp_path: Path) -> Path:
    return make_cohort(tmp_path, n=3)


def test_csv_and_yaml_cohorts_parse_to_the_same_cases(tmp_path: Path) -> None:
    c1 = load_cohort(make_cohort(tmp_path / "c", n=3))
    c2 = load_cohort(make_cohort(tmp_path / "y", n=3, fmt="yaml"))
    assert c1.models == c2.models == ["a", "b"]
    for a, b in zip(c1.cases, c2.cases, strict=True):
        assert a.id == b.id and a.attributes == b.attributes
        assert a.vocabularies == b.vocabularies == {"reference": "total", "a": "total", "b": "moose_clin_ct_organs"}
        assert a.reference.is_absolute() and a.reference.exists() and a.predictions["b"].exists()
    assert c1.cases[1].attributes == {"sex": "F", "age": 25, "bmi": 19.6}


@pytest.mark.parametrize(("bad", "expected_hint"), [
    ("refernce", "reference"), ("imgae", "image"), ("bmii", "bmi"), ("pred_a", "pred:a"), ("prd:a", "pred:a"),
])
def test_typo_column_names_it_and_the_close_match(cohort_csv: Path, bad: str, expected_hint: str) -> None:
    original = {"refernce": "reference", "imgae": "image", "bmii": "bmi", "pred_a": "pred:a", "prd:a": "pred:a"}[bad]
    edited = rewrite_csv(cohort_csv, rename={original: bad})
    with pytest.raises(ConfigError) as exc:
        load_cohort(edited)
    assert repr(bad) in exc.value.message
    assert expected_hint in exc.value.hint


def test_attr_prefix_forces_an_attribute_and_free_attributes_pass(cohort_csv: Path) -> None:
    c = load_cohort(rewrite_csv(cohort_csv, rename={"bmi": "attr:bmii", "age": "hospital", "sex": "Sex"}))
    assert set(c.cases[0].attributes) == {"sex", "bmii", "hospital"}  # common names lower-cased


def test_missing_required_columns_and_duplicates(cohort_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no prediction column"):
        load_cohort(rewrite_csv(cohort_csv, drop=("pred:a", "pred:b", "vocab:a", "vocab:b")))
    with pytest.raises(ConfigError, match="no 'reference' column"):
        load_cohort(rewrite_csv(cohort_csv, drop=("reference",)))
    with pytest.raises(ConfigError, match="vocab:c names no model") as exc:
        load_cohort(rewrite_csv(cohort_csv, rename={"vocab:b": "vocab:c"}))
    assert "(a, b)" in exc.value.hint
    text = cohort_csv.read_text().splitlines()
    dup = tmp_path / "dup.csv"
    dup.write_text("\n".join([*text, text[1]]) + "\n")
    with pytest.raises(ConfigError, match="'case00' appears twice"):
        load_cohort(dup)
    with pytest.raises(InputFileError, match="does not exist"):
        load_cohort(tmp_path / "nope.csv")
    (tmp_path / "c.txt").write_text("x")
    with pytest.raises(ConfigError, match="unknown extension"):
        load_cohort(tmp_path / "c.txt")


def test_yaml_typo_key_is_named(tmp_path: Path) -> None:
    path = make_cohort(tmp_path, n=2, fmt="yaml")
    path.write_text(path.read_text().replace("predictions:", "predictons:", 1))
    with pytest.raises(ConfigError) as exc:
        load_cohort(path)
    assert "'predictons'" in exc.value.message and "predictions" in exc.value.hint


@pytest.mark.parametrize(("old", "new", "named", "hint"), [
    ("reference: total", "refrence: total", "refrence", "reference"),  # top-level vocabularies
    ("b: moose_clin_ct_organs", "bb: moose_clin_ct_organs", "bb", "b"),  # a case's vocabularies
    ("sex: M", "sx: M", "sx", "sex"),  # a case's attributes, as CSV columns are checked
])
def test_yaml_typo_in_vocabularies_or_attributes_is_named(tmp_path: Path, old: str, new: str, named: str,
                                                          hint: str) -> None:
    """A misspelt vocabulary key silently left the reference unnamed (every structure became label_<n>)."""
    path = make_cohort(tmp_path, n=2, fmt="yaml")
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_cohort(path)
    assert repr(named) in exc.value.message and repr(hint) in exc.value.hint


def test_yaml_attr_prefix_forces_an_attribute(tmp_path: Path) -> None:
    path = make_cohort(tmp_path, n=2, fmt="yaml")
    path.write_text(path.read_text().replace("sex: M", "attr:sx: M", 1))
    assert load_cohort(path).cases[0].attributes["sx"] == "M"


def test_unknown_vocabulary_metric_and_structure_list_close_matches(cohort_csv: Path) -> None:
    cohort = load_cohort(cohort_csv)
    validate_vocabularies(cohort)
    assert validate_structures(cohort, ("liver", "kidney_left")) == ("liver", "kidney_left")
    assert validate_structures(cohort, ("Liver", "liver")) == ("liver",)  # synonyms/case resolved, deduplicated
    with pytest.raises(UnknownNameError) as exc:
        validate_structures(cohort, ("livr",))
    assert "'livr'" in exc.value.message and "liver" in exc.value.hint
    with pytest.raises(UnknownNameError) as exc:
        validate_metrics(("hd96",))
    assert "hd95" in exc.value.hint
    cohort.cases[0].vocabularies["b"] = "totl"
    with pytest.raises(UnknownNameError, match="totl"):
        validate_vocabularies(cohort)


def test_eval_options_always_add_volumes() -> None:
    assert EvalOptions(metrics=("dsc",)).metric_list() == ["dsc", "volume_ref", "volume_pred"]
    assert EvalOptions().metric_list() is None


def test_metric_aliases_resolve_and_typos_list_close_matches() -> None:
    import pytest as _pytest

    from organsegbench.cohort.runner import validate_metrics
    from organsegbench.errors import UnknownNameError

    assert validate_metrics(("dice", "HD95")) == ("dsc", "hd95")
    with _pytest.raises(UnknownNameError, match="hd95"):
        validate_metrics(("hd59",))
