"""Segmentations from label maps: names (sidecar, vocabulary, Slicer headers), overlap policy, grid placement."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
import SimpleITK as sitk
import synthetic

from organsegbench.errors import GeometryMismatchError, InputFileError
from organsegbench.io import (
    Image,
    Segmentation,
    SegmentInfo,
    read_segmentation,
    write_image,
    write_segmentation,
)
from organsegbench.io.segmentation import is_subgrid, sidecar_path
from organsegbench.io.slicer_nrrd import parse_terminology

LIVER_TYPE = {"value": "10200004", "scheme": "SCT", "meaning": "Liver"}
ANATOMY = {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"}


def _labelmap(shape=(10, 24, 20), labels=(2, 5, 9), seed=7) -> Image:
    blobs = synthetic.random_blobs(shape, len(labels), seed=seed)
    arr = np.zeros(shape, dtype=np.uint8)
    for i, lab in enumerate(labels, start=1):
        arr[blobs == i] = lab
    return Image(arr, spacing=(0.8, 0.7, 2.0), origin=(10.0, -20.0, 5.0))


def test_label_map_without_names_gets_label_n(tmp_path):
    img = _labelmap()
    path = write_image(img, tmp_path / "seg.nii.gz")
    seg = read_segmentation(path)
    present = sorted(int(v) for v in np.unique(img.array) if v)
    assert sorted(seg.segments) == present
    assert all(seg.segments[v].name == f"label_{v}" for v in present)
    np.testing.assert_array_equal(seg.labelmap.array, img.array)


def test_sidecar_round_trip_keeps_names_and_codes(tmp_path):
    img = _labelmap()
    segments = {v: SegmentInfo(v, f"organ{v}", category=ANATOMY, type=LIVER_TYPE if v == 5 else None,
                               color=(10 * v, 20, 30)) for v in (2, 5, 9)}
    for suffix in (".nii.gz", ".nrrd"):
        out = write_segmentation(Segmentation(img, segments), tmp_path / f"named{suffix}")
        assert json.loads(sidecar_path(out).read_text())["segments"][1]["name"] == "organ5"
        back = read_segmentation(out)
        assert {v: s.name for v, s in back.segments.items()} == {2: "organ2", 5: "organ5", 9: "organ9"}
        assert back.segments[5].type == LIVER_TYPE and back.segments[9].color == (90, 20, 30)
        np.testing.assert_array_equal(back.labelmap.array, img.array)


@dataclass
class _FakeStructure:
    type: dict
    category: dict
    color: tuple


@dataclass
class _FakeVocabulary:
    """Stands in for organsegbench.labels.Vocabulary (labels + structure lookup)."""

    labels: dict = field(default_factory=lambda: {2: "liver", 5: "spleen"})
    name: str = "fake"

    def structure(self, name):
        if name != "liver":
            raise KeyError(name)
        return _FakeStructure(type=LIVER_TYPE, category=ANATOMY, color=(0.8, 0.4, 0.2))


def test_vocabulary_names_and_codes(tmp_path, caplog):
    path = write_image(_labelmap(), tmp_path / "seg.nii.gz")
    seg = read_segmentation(path, vocabulary=_FakeVocabulary())
    assert seg.segments[2].name == "liver" and seg.segments[2].type == LIVER_TYPE
    assert seg.segments[2].color == (204, 102, 51)
    assert seg.segments[5].name == "spleen" and seg.segments[5].type is None  # no structure entry: no codes
    assert seg.segments[9].name == "label_9"
    assert "not in vocabulary" in caplog.text


def test_real_vocabulary_when_installed(tmp_path):
    labels = pytest.importorskip("organsegbench.labels")
    if not hasattr(labels, "get_vocabulary"):
        pytest.skip("organsegbench.labels.get_vocabulary not landed yet")
    vocab = labels.get_vocabulary("total")
    some = sorted(vocab.labels)[:3]
    arr = np.zeros((3, 4, 5), dtype=np.uint8)
    for i, v in enumerate(some):
        arr[i, 0, 0] = v
    seg = read_segmentation(write_image(Image(arr), tmp_path / "t.nii.gz"), vocabulary="total")
    assert {v: seg.segments[v].name for v in some} == {v: vocab.labels[v] for v in some}
    structure = vocab.structure(vocab.labels[some[0]])
    assert seg.segments[some[0]].type["value"] == str(structure.type.value)
    assert seg.segments[some[0]].category["meaning"] == str(structure.category.meaning)


def test_overlap_policy_keeps_exact_masks(caplog):
    grid = Image(np.zeros((4, 6, 6), dtype=np.uint8))
    a = synthetic.box((4, 6, 6), (0, 0, 0), (4, 4, 4))
    b = synthetic.box((4, 6, 6), (1, 2, 2), (3, 6, 6))
    c = synthetic.box((4, 6, 6), (0, 5, 0), (1, 6, 1))
    masks = {1: a, 2: b, 3: c}
    seg = Segmentation.from_masks(grid, masks, {k: SegmentInfo(k, f"s{k}") for k in masks})
    assert seg.overlapping and set(seg.overlap_masks) == {1, 2}
    assert seg.overlaps() == {(1, 2): int((a & b).sum())}
    for k, m in masks.items():
        np.testing.assert_array_equal(seg.segment_mask(k), m)
        assert seg.voxel_counts()[k] == int(m.sum())
    # flattened label map: later segment wins in shared voxels, nothing outside the union
    np.testing.assert_array_equal(seg.labelmap.array[a & b], 2)
    np.testing.assert_array_equal(seg.labelmap.array > 0, a | b | c)
    assert seg.segments[1].metadata["overlaps_with"] == [2] and "overlap" in caplog.text


def test_overlapping_segmentation_is_not_written_to_a_label_map(tmp_path):
    grid = Image(np.zeros((2, 4, 4), dtype=np.uint8))
    m = np.ones((2, 4, 4), dtype=bool)
    seg = Segmentation.from_masks(grid, {1: m, 2: m}, {1: SegmentInfo(1, "a"), 2: SegmentInfo(2, "b")})
    for name in ("x.nii.gz", "x.nrrd"):
        with pytest.raises(InputFileError) as exc:
            write_segmentation(seg, tmp_path / name)
        assert "DICOM SEG" in exc.value.hint and ".seg.nrrd" in exc.value.hint
        assert not (tmp_path / name).exists()


def test_overlapping_segmentation_round_trips_through_seg_nrrd_layers(tmp_path):
    shape = (4, 6, 6)
    a = synthetic.box(shape, (0, 0, 0), (4, 4, 4))
    b = synthetic.box(shape, (1, 2, 2), (3, 6, 6))
    c = synthetic.box(shape, (0, 1, 1), (2, 3, 3))  # overlaps a (and b) too: needs a third layer
    d = synthetic.box(shape, (3, 5, 0), (4, 6, 1))
    masks = {2: a, 5: b, 8: c, 9: d}
    seg = Segmentation.from_masks(Image(np.zeros(shape, dtype=np.uint8), spacing=(0.5, 0.5, 2.0)), masks,
                                  {k: SegmentInfo(k, f"s{k}", color=(k, 2 * k, 3 * k)) for k in masks})
    out = write_segmentation(seg, tmp_path / "layers.seg.nrrd")
    assert sitk.ReadImage(str(out)).GetNumberOfComponentsPerPixel() == 3
    back = read_segmentation(out)
    assert sorted(back.segments) == [2, 5, 8, 9] and back.overlapping
    for k, m in masks.items():
        np.testing.assert_array_equal(back.segment_mask(k), m)
        assert back.segments[k].color == (k, 2 * k, 3 * k)


def test_volumes_ml_match_numpy():
    img = _labelmap()
    seg = Segmentation(img, {v: SegmentInfo(v, str(v)) for v in (2, 5, 9)})
    for v, ml in seg.volumes_ml().items():
        assert ml == pytest.approx(np.count_nonzero(img.array == v) * 0.8 * 0.7 * 2.0 / 1000.0)


@pytest.mark.parametrize("values", [np.array([0.5, 1.0]), np.array([-1, 2])])
def test_non_label_maps_are_refused(tmp_path, values):
    arr = np.resize(values, (2, 3, 4)).astype(values.dtype)
    path = write_image(Image(arr), tmp_path / "bad.nrrd")
    with pytest.raises(InputFileError, match="not a label map"):
        read_segmentation(path)


def test_truncated_label_map_is_refused(tmp_path):
    good = write_image(_labelmap(shape=(20, 60, 60)), tmp_path / "seg.nii.gz")
    bad = tmp_path / "cut.nii.gz"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputFileError, match="cut.nii.gz"):
        read_segmentation(bad)


def test_slicer_terminology_parsing():
    text = ("Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure"
            "~SCT^10200004^Liver~^^~Anatomic codes - DICOM master list~SCT^818981001^Abdomen~^^")
    t = parse_terminology(text)
    assert t["category"] == ANATOMY and t["type"] == LIVER_TYPE and t["type_modifier"] is None
    assert t["anatomic_region"] == {"value": "818981001", "scheme": "SCT", "meaning": "Abdomen"}


def test_slicer_seg_nrrd_round_trip(tmp_path):
    img = _labelmap()
    segs = {2: SegmentInfo(2, "liver", category=ANATOMY, type=LIVER_TYPE, color=(200, 10, 20)),
            5: SegmentInfo(5, "five"), 9: SegmentInfo(9, "nine", color=(1, 2, 3))}
    out = write_segmentation(Segmentation(img, segs), tmp_path / "x.seg.nrrd")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(out))
    reader.ReadImageInformation()
    assert reader.GetMetaData("Segment0_Name") == "liver" and reader.GetMetaData("Segment0_LabelValue") == "2"
    back = read_segmentation(out)
    assert {v: s.name for v, s in back.segments.items()} == {2: "liver", 5: "five", 9: "nine"}
    assert back.segments[2].type == LIVER_TYPE and back.segments[2].color == (200, 10, 20)
    np.testing.assert_array_equal(back.labelmap.array, img.array)


def test_layered_slicer_seg_nrrd_reads_overlaps(tmp_path):
    """A hand-written two-layer .seg.nrrd (Slicer's layout for overlapping segments)."""
    arr = np.zeros((3, 4, 5, 2), dtype=np.uint8)  # z, y, x, layer (layer varies fastest on disk)
    arr[0:2, 1:3, 1:3, 0] = 1
    arr[1:3, 2:4, 2:5, 1] = 1
    header = ("NRRD0004\ntype: unsigned char\ndimension: 4\nspace: left-posterior-superior\nsizes: 2 5 4 3\n"
              "space directions: none (0.5,0,0) (0,0.6,0) (0,0,2)\nkinds: list domain domain domain\n"
              "encoding: raw\nspace origin: (1,2,3)\n"
              "Segment0_ID:=a\nSegment0_Name:=first\nSegment0_Layer:=0\nSegment0_LabelValue:=1\n"
              "Segment0_Color:=1 0 0\n"
              "Segment1_ID:=b\nSegment1_Name:=second\nSegment1_Layer:=1\nSegment1_LabelValue:=1\n\n")
    path = tmp_path / "layers.seg.nrrd"
    path.write_bytes(header.encode() + arr.tobytes())
    seg = read_segmentation(path)
    assert [s.name for s in seg.segments.values()] == ["first", "second"] and seg.segments[1].color == (255, 0, 0)
    assert seg.overlapping
    np.testing.assert_array_equal(seg.segment_mask(1), arr[..., 0] > 0)
    np.testing.assert_array_equal(seg.segment_mask(2), arr[..., 1] > 0)
    assert seg.labelmap.spacing == (0.5, 0.6, 2.0) and seg.labelmap.origin == (1.0, 2.0, 3.0)


def test_on_grid_sub_grid_is_lossless_and_other_grids_need_resample():
    big = Image(np.zeros((6, 10, 12), dtype=np.int16), spacing=(0.5, 0.5, 2.0), origin=(0.0, 0.0, 0.0))
    crop = np.zeros((2, 4, 5), dtype=np.uint8)
    crop[0, 1:3, 2:4] = 3
    small = Image(crop, spacing=(0.5, 0.5, 2.0), origin=(1.0, 1.5, 4.0))  # voxel (2, 3, 2) of big
    assert is_subgrid(small, big)
    placed = Segmentation(small, {3: SegmentInfo(3, "x")}).on_grid(big)
    expected = np.zeros(big.shape, dtype=np.uint8)
    expected[2:4, 3:7, 2:7] = crop
    np.testing.assert_array_equal(placed.labelmap.array, expected)

    shifted = Image(crop, spacing=(0.7, 0.5, 2.0), origin=(1.0, 1.5, 4.0))
    assert not is_subgrid(shifted, big)
    with pytest.raises(GeometryMismatchError) as exc:
        Segmentation(shifted, {3: SegmentInfo(3, "x")}).on_grid(big)
    assert "--resample" in exc.value.hint
    assert big.geometry_string() in exc.value.message and shifted.geometry_string() in exc.value.message
    resampled = Segmentation(shifted, {3: SegmentInfo(3, "x")}).on_grid(big, resample=True)
    assert resampled.labelmap.shape == big.shape and resampled.voxel_counts()[3] > 0


def test_vocabulary_names_labels_whose_sidecar_has_only_placeholder_names(tmp_path):
    """NRRD -> NIfTI conversion writes a sidecar with ``label_<n>``; --vocabulary must still name the labels."""
    img = _labelmap()
    plain = write_segmentation(read_segmentation(write_image(img, tmp_path / "plain.nrrd")), tmp_path / "c.nii.gz")
    assert json.loads(sidecar_path(plain).read_text())["segments"][0]["name"] == "label_2"
    seg = read_segmentation(plain, vocabulary=_FakeVocabulary())
    assert seg.segments[2].name == "liver" and seg.segments[2].type == LIVER_TYPE
    assert seg.segments[5].name == "spleen" and seg.segments[9].name == "label_9"
