"""Harmonisation across vocabularies: rules, vectorised relabelling and cross-model structure matching."""

from __future__ import annotations

import numpy as np
import pytest

from organsegbench.errors import OrganSegBenchError, UnknownNameError
from organsegbench.io import Image
from organsegbench.labels import (
    get_vocabulary,
    harmonisation_levels,
    harmonisation_notes,
    harmonise,
    harmonised_labelmap,
    harmonised_name,
    match_structures,
)

HEART_PARTS = ("heart_myocardium", "heart_atrium_left", "heart_atrium_right", "heart_ventricle_left",
               "heart_ventricle_right")
LOBES_LEFT = ("lung_upper_lobe_left", "lung_lower_lobe_left")
LOBES_RIGHT = ("lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right")


def test_v1_heart_parts_become_heart_and_pulmonary_artery_stays():
    v1 = get_vocabulary("total_v1")
    harm = harmonise(v1.labels)
    assert {harm[v1.label_of(p)] for p in HEART_PARTS} == {"heart"}
    assert harm[v1.label_of("pulmonary_artery")] == "pulmonary_artery"
    assert "heart" in harmonisation_notes("harmonised")


def test_five_lobes_become_two_lungs():
    v2 = get_vocabulary("total")
    harm = harmonise(v2.labels)
    assert {harm[v2.label_of(lobe)] for lobe in LOBES_LEFT} == {"lung_left"}
    assert {harm[v2.label_of(lobe)] for lobe in LOBES_RIGHT} == {"lung_right"}
    assert set(harm.values()).isdisjoint(LOBES_LEFT + LOBES_RIGHT)


def test_levels():
    assert harmonisation_levels() == ["canonical", "harmonised", "grouped"]
    assert harmonised_name("heart_atrium_left", "canonical") == "heart_atrium_left"
    assert harmonised_name("left upper lobe", "grouped") == "lung_left"  # base level rules carry over
    assert harmonised_name("vertebra_L1", "harmonised") == "vertebrae_L1"
    assert harmonised_name("vertebra_L1", "grouped") == "vertebrae"
    assert harmonised_name("vertebrae_S1") == "sacrum"
    with pytest.raises(UnknownNameError, match="harmonisation level"):
        harmonise({1: "liver"}, level="coarsest")


def test_every_harmonised_total_structure_is_shared_by_mr_where_mr_has_it():
    mr = set(harmonise(get_vocabulary("total_mr").labels, level="grouped").values())
    ct = set(harmonise(get_vocabulary("total").labels, level="grouped").values())
    # total_mr's classes all exist in CT at the grouped level, except the discs the CT model does not segment
    assert mr - ct == {"intervertebral_discs"}


def test_harmonise_unknown_name_strict_and_lenient():
    with pytest.raises(UnknownNameError) as info:
        harmonise({1: "liver", 7: "spleeen"})
    assert "label 7" in str(info.value) and "spleen" in info.value.hint
    assert harmonise({1: "liver", 7: "My Lesion"}, strict=False) == {1: "liver", 7: "my_lesion"}


def _synthetic_pair(rng):
    """A v1-style and a v2-style label map of the same anatomy (boxes), on one 40x40x40 grid."""
    v1, v2 = get_vocabulary("total_v1"), get_vocabulary("total")
    a = np.zeros((40, 40, 40), np.uint8)
    b = np.zeros_like(a)
    # heart: five v1 parts side by side; v2 has one heart label over the same voxels
    for i, part in enumerate(HEART_PARTS):
        a[5:15, 5 + 4 * i:9 + 4 * i, 5:15] = v1.label_of(part)
    b[5:15, 5:25, 5:15] = v2.label_of("heart")
    # left lung lobes (upper/lower) vs v2 lobes split at a different height: same lung, different lobes
    a[20:26, 5:15, 20:30] = v1.label_of("lung_upper_lobe_left")
    a[26:35, 5:15, 20:30] = v1.label_of("lung_lower_lobe_left")
    b[20:30, 5:15, 20:30] = v2.label_of("lung_upper_lobe_left")
    b[30:35, 5:15, 20:30] = v2.label_of("lung_lower_lobe_left")
    # liver, with different label values in v1 (5) and v2 (5) but one voxel row of disagreement
    a[20:35, 20:35, 5:15] = v1.label_of("liver")
    b[20:35, 20:34, 5:15] = v2.label_of("liver")
    # the pulmonary artery only v1 segments
    a[2:4, 30:35, 30:35] = v1.label_of("pulmonary_artery")
    noise = rng.integers(0, 2, size=a.shape).astype(bool) & (a == 0) & (b == 0)
    assert noise.any()  # background stays background in both
    return a, b, v1, v2


def test_v1_and_v2_overlap_structure_by_structure(rng):
    a, b, v1, v2 = _synthetic_pair(rng)
    ha, la = harmonised_labelmap(a, v1.labels)
    hb, lb = harmonised_labelmap(b, v2.labels)
    table = match_structures(la, lb, names=["v1", "v2"])
    shared = table.label_pairs(0, 1)
    assert {"heart", "lung_left", "liver"} <= set(shared)
    for name in ("heart", "lung_left"):
        (va,), (vb,) = shared[name]
        assert np.array_equal(ha == va, hb == vb), name  # identical masks once harmonised
    (va,), (vb,) = shared["liver"]
    inter = np.logical_and(ha == va, hb == vb).sum()
    dice = 2 * inter / ((ha == va).sum() + (hb == vb).sum())
    assert dice == pytest.approx(2 * 14 / 29)
    assert table.row("pulmonary_artery").present == (True, False)
    # at the canonical level the v1 heart parts have no partner in v2
    canon = match_structures(v1.labels, v2.labels, level="canonical")
    assert canon.row("heart_myocardium").present == (True, False)
    assert canon.row("heart").present == (False, True)


def test_harmonised_labelmap_values_and_dtype(rng):
    labels = {2: "lung_upper_lobe_left", 3: "lung_lower_lobe_left", 7: "liver", 9: "left atrium"}
    arr = rng.choice([0, 2, 3, 7, 9], size=(6, 7, 8)).astype(np.int32)
    out, new = harmonised_labelmap(arr, labels)
    assert new == {1: "lung_left", 2: "liver", 3: "heart"}
    assert out.dtype == np.uint8
    expected = np.select([arr == 2, arr == 3, arr == 7, arr == 9], [1, 1, 2, 3], 0)
    assert np.array_equal(out, expected)


def test_harmonised_labelmap_keeps_image_geometry():
    img = Image(np.ones((3, 4, 5), np.uint16) * 44, spacing=(0.8, 0.9, 2.5), origin=(1.0, 2.0, 3.0))
    out, new = harmonised_labelmap(img, get_vocabulary("total_v1").labels)
    assert isinstance(out, Image) and out.spacing == img.spacing and out.origin == img.origin
    assert new[int(out.array.max())] == "heart"


def test_harmonised_labelmap_bad_inputs():
    with pytest.raises(OrganSegBenchError, match=r"values \[118\]"):
        harmonised_labelmap(np.array([[0, 1, 118]]), get_vocabulary("total").labels)
    with pytest.raises(OrganSegBenchError, match="dtype float"):
        harmonised_labelmap(np.array([0.0, 1.0]), {1: "liver"})
    with pytest.raises(OrganSegBenchError, match="negative"):
        harmonised_labelmap(np.array([-1, 1]), {1: "liver"})
    with pytest.raises(OrganSegBenchError, match="background"):
        harmonised_labelmap(np.array([0, 1]), {0: "liver", 1: "spleen"})
    with pytest.raises(OrganSegBenchError, match=r"negative label values \[-3\]"):
        harmonised_labelmap(np.array([0, 1]), {-3: "liver", 1: "spleen"})


def test_harmonised_labelmap_huge_label_values():
    big = 2**30
    arr = np.array([[0, big, 7], [7, 0, big]], dtype=np.int64)
    out, new = harmonised_labelmap(arr, {7: "liver", big: "left upper lobe"})
    assert new == {1: "liver", 2: "lung_left"}
    assert np.array_equal(out, [[0, 2, 1], [1, 0, 2]])
    with pytest.raises(OrganSegBenchError, match=rf"values \[{big + 1}\]"):
        harmonised_labelmap(arr + (arr == big), {7: "liver", big: "left upper lobe"})


def test_match_counts_models_per_structure():
    vocabs = [get_vocabulary(n) for n in ("total", "total_v1", "moose_clin_ct_organs", "total_mr")]
    table = match_structures(*(v.labels for v in vocabs), names=[v.name for v in vocabs])
    assert table.row("liver").count == 4
    assert table.row("thyroid").present == (True, False, True, False)  # MOOSE's two lobes count once
    assert table.row("thyroid").labels[2] == tuple(sorted(
        k for k, v in vocabs[2].labels.items() if v.startswith("thyroid_gland_")))
    assert table.row("heart").present == (True, True, False, True)
    assert table.rows[0].count == 4 and table.rows[-1].count >= 1
    assert "lung_left" in table.common()
    frame = table.to_frame()
    assert list(frame.columns[:3]) == ["structure", "display_name", "count"]
    assert frame.set_index("structure").loc["heart", "moose_clin_ct_organs"] == False  # noqa: E712


def test_match_by_code_first_then_name():
    left_kidney_ts = {"name": "Segment 1", "type": {"value": "64033007", "scheme": "SCT", "meaning": "Kidney"},
                      "modifier": {"value": "7771000", "scheme": "SCT", "meaning": "Left"}}
    left_kidney_moose = {"name": "liver",  # a wrong name: the code wins
                         "type": {"value": "18639004", "scheme": "SCT", "meaning": "Left kidney structure"}}
    cyst = {"name": "kidney_cyst_right", "type": {"value": "367643001", "scheme": "SCT", "meaning": "Cyst"}}
    table = match_structures({1: left_kidney_ts, 2: cyst}, {5: left_kidney_moose}, {3: "left kidney"})
    row = table.row("kidney_left")
    assert row.labels == ((1,), (5,), (3,))
    assert row.matched_by == ("code", "code", "name")
    # the cyst code is shared by both sides, so the name decides; at the harmonised level it joins its kidney
    assert table.row("kidney_right").matched_by[0] == "name"


def test_match_unknown_names_match_each_other_and_errors():
    table = match_structures({1: "GREEN"}, {4: "green"}, names=["a", "b"])
    assert table.row("green").labels == ((1,), (4,))
    assert table.row("green").matched_by == ("unknown", "unknown")
    with pytest.raises(OrganSegBenchError, match="2 names for 1"):
        match_structures({1: "liver"}, names=["a", "b"])
    with pytest.raises(OrganSegBenchError, match="at least one"):
        match_structures()


def test_real_dicom_seg_segments_match(dcmqi_data):
    """dcmqi's liver.dcm codes Liver with the legacy SRT code T-62000: matched through its meaning."""
    pydicom = pytest.importorskip("pydicom")
    ds = pydicom.dcmread(dcmqi_data / "liver.dcm", stop_before_pixels=True)
    segments = {int(s.SegmentNumber): s for s in ds.SegmentSequence}
    table = match_structures(segments, get_vocabulary("total").labels, names=["dcmqi", "total"])
    row = table.row("liver")
    assert row.present == (True, True) and row.matched_by[0] == "name"


def test_match_dicom_and_highdicom_style_segments():
    from types import SimpleNamespace

    from highdicom.sr import CodedConcept
    from pydicom.dataset import Dataset

    def item(value, meaning):
        ds = Dataset()
        ds.CodeValue, ds.CodingSchemeDesignator, ds.CodeMeaning = value, "SCT", meaning
        return ds

    kidney = item("64033007", "Kidney")
    kidney.SegmentedPropertyTypeModifierCodeSequence = [item("24028007", "Right")]  # nested, as in DICOM SEG
    segment = Dataset()
    segment.SegmentNumber, segment.SegmentLabel = 1, "Segment_1"
    segment.SegmentedPropertyTypeCodeSequence = [kidney]
    hd_like = SimpleNamespace(segment_label="Segment_2",
                              segmented_property_type=CodedConcept("10200004", "SCT", "Liver"))
    table = match_structures({1: segment, 2: hd_like}, {2: "right kidney", 5: "liver"})
    assert table.row("kidney_right").matched_by == ("code", "name")
    assert table.row("liver").matched_by == ("code", "name")


@pytest.mark.parametrize("vocab", ["total", "total_v1", "total_mr", "moose_clin_ct_organs"])
def test_every_coded_structure_is_found_by_its_code(vocab):
    """A DICOM SEG that codes its segments like TotalSegmentator / IDC's v1.5.6 conversion (dcmqi JSON keys) and
    labels them with something unhelpful still matches structure by structure."""
    from organsegbench.labels import catalogue

    cat = catalogue()
    labels = get_vocabulary(vocab).labels
    ambiguous = {n for names in cat.ambiguous_codes.values() for n in names}
    segments = {}
    for value, name in labels.items():
        s = cat.structures[name]
        if s.type is None or name in ambiguous:
            continue
        seg = {"SegmentLabel": f"Segment {value}",
               "SegmentedPropertyTypeCodeSequence": {"CodeValue": s.type.value, "CodingSchemeDesignator": "SCT",
                                                     "CodeMeaning": s.type.meaning}}
        if s.modifier is not None:
            seg["SegmentedPropertyTypeModifierCodeSequence"] = {
                "CodeValue": s.modifier.value, "CodingSchemeDesignator": "SCT", "CodeMeaning": s.modifier.meaning}
        segments[value] = seg
    assert len(segments) >= len(labels) - 2
    table = match_structures(segments, labels, level="canonical")
    rows = [r for r in table if r.structure not in ambiguous and cat.structures[r.structure].type is not None]
    assert len(rows) == len(segments)
    for row in rows:
        assert row.count == 2 and row.matched_by[0] == "code", row.structure


def test_match_segments_read_by_io(dcmqi_data):
    """Segments as organsegbench.io reads them (SegmentInfo with dict codes) match by code, or by name."""
    io_seg = pytest.importorskip("organsegbench.io.segmentation")
    from organsegbench.io import read_segmentation

    seg = read_segmentation(dcmqi_data / "liver.dcm")
    kidney = io_seg.SegmentInfo(label=2, name="Segment_2",
                                type={"value": "64033007", "scheme": "SCT", "meaning": "Kidney"},
                                type_modifier={"value": "7771000", "scheme": "SCT", "meaning": "Left"})
    table = match_structures({**seg.segments, 2: kidney}, get_vocabulary("total_v1").labels)
    assert table.row("liver").present == (True, True)
    assert table.row("kidney_left").matched_by == ("code", "name")
