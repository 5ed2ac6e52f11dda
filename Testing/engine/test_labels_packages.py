"""The JSON vocabularies against the installed model packages (skipped when the packages are absent)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

from organsegbench.labels import catalogue, get_vocabulary

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.models


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


@pytest.mark.parametrize(("vocab", "task"), [("total", "total"), ("total_mr", "total_mr"), ("total_v1", "total_v1")])
def test_totalsegmentator_maps_match_installed_package(vocab, task):
    _needs("totalsegmentator")
    from totalsegmentator.map_to_binary import class_map

    ours = get_vocabulary(vocab)
    assert ours.source_names == class_map[task]
    assert ours.labels == class_map[task]  # TotalSegmentator names are the canonical names


def test_totalsegmentator_snomed_codes_match_package_csv():
    _needs("totalsegmentator")
    import totalsegmentator

    path = Path(totalsegmentator.__file__).parent / "resources" / "totalsegmentator_snomed_mapping.csv"
    rows = {r["Structure"]: r for r in csv.DictReader(path.open(newline=""))}
    structures = catalogue().structures
    checked = 0
    for name in set(get_vocabulary("total").labels.values()) | set(get_vocabulary("total_v1").labels.values()):
        row = rows[name]
        s = structures[name]
        assert s.type is not None and s.type.value == row["SegmentedPropertyTypeCodeSequence.CodeValue"], name
        assert s.category.value == row["SegmentedPropertyCategoryCodeSequence.CodeValue"], name
        modifier = row["SegmentedPropertyTypeModifierCodeSequence.CodeValue"] or None
        assert (s.modifier.value if s.modifier else None) == modifier, name
        assert ",".join(str(c) for c in s.color) == row["DicomRGBColor"], name
        checked += 1
    assert checked == len(set(get_vocabulary("total").labels.values()) | set(get_vocabulary("total_v1").labels.values()))


def test_moose_clin_ct_organs_matches_installed_package():
    _needs("moosez")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from build_vocabularies import read_moose_table
    finally:
        sys.path.remove(str(ROOT / "tools"))
    from moosez.mappings.SNOMED import moose_to_snomed

    table, _source = read_moose_table("clin_ct_organs")
    ours = get_vocabulary("moose_clin_ct_organs")
    assert ours.source_names == table
    for value, moose_name in table.items():
        s = catalogue().structures[ours.labels[value]]
        code = moose_to_snomed[moose_name]["ID"]
        assert code in {s.type.value, *(t.value for t, _m in s.alt_codes)}, moose_name
        assert catalogue().by_code(type(s.type)(code, "SCT")) == s.name, moose_name


def test_committed_json_is_what_the_build_script_makes():
    _needs("totalsegmentator")
    _needs("moosez")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import build_vocabularies
    finally:
        sys.path.remove(str(ROOT / "tools"))
    assert build_vocabularies.main(["--check"]) == 0
