"""DICOM SEG: the real dcmqi SEGs, SEGs without their CT, and write -> read round trips (real and synthetic)."""

from __future__ import annotations

import shutil

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import synthetic

from organsegbench.errors import GeometryMismatchError, InputFileError
from organsegbench.io import (
    Image,
    Segmentation,
    SegmentInfo,
    read_image,
    read_segmentation,
    resample_to,
    same_grid,
    write_dicom_seg,
    write_dicom_series,
)

LIVER = {"value": "10200004", "scheme": "SCT", "meaning": "Liver"}
ANATOMY = {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"}


def _nrrd(path) -> Image:
    return Image.from_sitk(sitk.ReadImage(str(path)))


def test_liver_seg_matches_the_nrrd_in_physical_space(dcmqi_data):
    seg = read_segmentation(dcmqi_data / "liver.dcm")
    assert pydicom.dcmread(dcmqi_data / "liver.dcm", stop_before_pixels=True).NumberOfFrames == 3
    assert list(seg.segments) == [1] and seg.segments[1].name == "Liver"
    assert seg.segments[1].type["meaning"] == "Liver" and seg.segments[1].category["meaning"] == "Tissue"
    ct = read_image(dcmqi_data / "ct-3slice")
    assert seg.metadata["referenced_series_uids"] == [ct.metadata["series_uid"]]
    assert same_grid(seg.labelmap, ct)
    ref = _nrrd(dcmqi_data / "liver_seg.nrrd")
    # physical space: resample the reference onto the SEG grid (identity transform) and compare voxel by voxel
    on_seg_grid = resample_to(ref, seg.labelmap)
    np.testing.assert_array_equal(seg.segment_mask(1), on_seg_grid.array == 1)
    assert seg.voxel_counts()[1] == int((ref.array == 1).sum())


def test_seg_reads_without_its_ct(tmp_path, dcmqi_data):
    lonely = tmp_path / "only_seg"
    lonely.mkdir()
    shutil.copy(dcmqi_data / "liver.dcm", lonely / "liver.dcm")
    seg = read_segmentation(lonely / "liver.dcm")
    with_ct = read_segmentation(dcmqi_data / "liver.dcm")
    assert same_grid(seg.labelmap, with_ct.labelmap)
    np.testing.assert_array_equal(seg.labelmap.array, with_ct.labelmap.array)
    assert read_segmentation(lonely).segments[1].name == "Liver"  # the folder holding just the SEG works too


def test_partial_overlaps_keeps_all_five_segments_exactly(dcmqi_data):
    seg = read_segmentation(dcmqi_data / "partial_overlaps.dcm")
    assert sorted(seg.segments) == [1, 2, 3, 4, 5] and seg.overlapping
    # dcmqi's own NRRD exports of the same segments (values = segment numbers, split so that none overlap)
    found = set()
    for i in (1, 2, 3):
        part = resample_to(_nrrd(dcmqi_data / f"partial_overlaps-{i}.nrrd"), seg.labelmap)
        for value in np.unique(part.array):
            if value:
                np.testing.assert_array_equal(seg.segment_mask(int(value)), part.array == value)
                found.add(int(value))
    assert found == {1, 2, 3, 4, 5}
    masks = seg.masks()
    union = np.logical_or.reduce(list(masks.values()))
    np.testing.assert_array_equal(seg.labelmap.array > 0, union)
    for label in seg.segments:  # every labelled voxel carries a segment that really covers it
        assert masks[label][seg.labelmap.array == label].all()
    assert seg.overlaps()[(1, 2)] == int((masks[1] & masks[2]).sum()) > 0


@pytest.mark.parametrize("name", ["sparse-labelmap-noppv", "sparse-labelmap-ppv5"])
def test_labelmap_segs_match_their_nrrd(dcmqi_data, name):
    seg = read_segmentation(dcmqi_data / f"{name}.dcm")
    assert seg.metadata["segmentation_type"] == "LABELMAP" and list(seg.segments) == [1]
    assert seg.segments[1].name == "Liver"
    ref = resample_to(_nrrd(dcmqi_data / f"{name.replace('-', '_')}_seg.nrrd"), seg.labelmap)
    # the ppv5 NRRD marks pixel padding with 5; the SEG treats padding as background
    np.testing.assert_array_equal(seg.segment_mask(1), ref.array == 1)


@pytest.mark.parametrize("case", ["23x38x3", "24x38x3"])
def test_small_image_seg_pairs(dcmqi_data, case):
    seg = read_segmentation(dcmqi_data / case / "seg" / "label.seg")
    image = read_image(dcmqi_data / case / "image")
    assert same_grid(seg.labelmap, image)
    ref = resample_to(_nrrd(dcmqi_data / case / "nrrd" / "label.nrrd"), seg.labelmap)
    np.testing.assert_array_equal(seg.labelmap.array > 0, ref.array > 0)


def test_liver_round_trip_through_our_writer(tmp_path, dcmqi_data):
    ref = read_segmentation(dcmqi_data / "liver_seg.nrrd")
    ref.segments[1] = SegmentInfo(1, "liver", category=ANATOMY, type=LIVER, color=(221, 130, 101),
                                  algorithm_name="semi-automatic tool")
    out = write_dicom_seg(ref, dcmqi_data / "ct-3slice", tmp_path / "liver.dcm")
    ds = pydicom.dcmread(out)
    ct_uid = pydicom.dcmread(dcmqi_data / "ct-3slice" / "01.dcm", stop_before_pixels=True).SeriesInstanceUID
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == ct_uid
    assert ds.SegmentSequence[0].SegmentAlgorithmType == "AUTOMATIC"
    assert ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == \
        "semi-automatic tool"
    back = read_segmentation(out)
    assert same_grid(back.labelmap, ref.labelmap)
    np.testing.assert_array_equal(back.labelmap.array, ref.labelmap.array)
    info = back.segments[1]
    assert (info.name, info.category, info.type, info.color) == ("liver", ANATOMY, LIVER, (221, 130, 101))
    # the original SEG and ours describe the same voxels
    np.testing.assert_array_equal(back.segment_mask(1), read_segmentation(dcmqi_data / "liver.dcm").segment_mask(1))


def test_overlapping_round_trip(tmp_path, dcmqi_data):
    src = read_segmentation(dcmqi_data / "partial_overlaps.dcm")
    out = write_dicom_seg(src, dcmqi_data / "ct-3slice", tmp_path / "po.dcm")
    back = read_segmentation(out)
    assert back.overlapping and [s.name for s in back.segments.values()] == [s.name for s in src.segments.values()]
    for label in src.segments:
        np.testing.assert_array_equal(back.segment_mask(label), src.segment_mask(label))
        assert back.segments[label].type == src.segments[label].type


@pytest.mark.parametrize("seg_type", ["binary", "labelmap"])
def test_synthetic_multilabel_round_trip_restores_label_values(tmp_path, rng, seg_type):
    shape = (6, 40, 36)
    ct = Image(rng.integers(-1000, 1000, size=shape).astype(np.int16), spacing=(0.9, 0.8, 3.0),
               origin=(-50.0, 20.0, 400.0), direction=np.diag([1.0, -1.0, -1.0]))
    write_dicom_series(ct, tmp_path / "ct")
    blobs = synthetic.random_blobs(shape, 3, seed=11)
    labels = np.zeros(shape, dtype=np.uint8)
    for i, value in enumerate((2, 7, 30), start=1):  # non-consecutive label values
        labels[blobs == i] = value
    labels[0] = 0  # an empty first slice: its frames are omitted from the SEG
    segs = {v: SegmentInfo(v, f"organ_{v}") for v in (2, 7, 30) if (labels == v).any()}
    seg = Segmentation(ct.with_array(labels), segs)
    out = write_dicom_seg(seg, tmp_path / "ct", tmp_path / "multi.dcm", seg_type=seg_type, algorithm_name="unit")
    numbers = [int(s.SegmentNumber) for s in pydicom.dcmread(out, stop_before_pixels=True).SegmentSequence]
    assert numbers[-len(segs):] == list(range(1, len(segs) + 1))  # DICOM numbers are consecutive
    back = read_segmentation(out)
    ct_grid = read_image(tmp_path / "ct")
    # empty frames are omitted, so the SEG's own grid is a slab of the CT grid that lies exactly on it
    assert back.labelmap.shape[0] < shape[0]
    back = back.on_grid(ct_grid)
    assert same_grid(back.labelmap, ct_grid)
    assert sorted(back.segments) == sorted(segs)
    np.testing.assert_array_equal(back.labelmap.array, labels)
    assert all(back.segments[v].name == f"organ_{v}" for v in segs)
    assert back.segments[sorted(segs)[0]].type["value"] == "91723000"  # documented default type code


def test_writing_on_another_grid_needs_resample(tmp_path, dcmqi_data):
    small = read_segmentation(dcmqi_data / "24x38x3" / "nrrd" / "label.nrrd")
    with pytest.raises(GeometryMismatchError) as exc:
        write_dicom_seg(small, dcmqi_data / "ct-3slice", tmp_path / "x.dcm")
    assert "--resample" in exc.value.hint and "(512, 512, 3)" in exc.value.message and "(24, 38, 3)" in \
        exc.value.message
    assert not (tmp_path / "x.dcm").exists()
    out = write_dicom_seg(small, dcmqi_data / "ct-3slice", tmp_path / "x.dcm", resample=True)
    assert hd.seg.segread(out).segment_numbers == [1]


def test_sub_grid_seg_is_placed_exactly_on_the_ct(tmp_path, dcmqi_data):
    """A label map covering only the middle CT slice is placed without --resample (voxel centres coincide)."""
    ct = read_image(dcmqi_data / "ct-3slice")
    ref = _nrrd(dcmqi_data / "liver_seg.nrrd")
    middle = Image(ref.array[1:2], spacing=ref.spacing, origin=tuple(np.asarray(ct.origin) + [0, 0, ct.spacing[2]]))
    out = write_dicom_seg(Segmentation(middle, {1: SegmentInfo(1, "liver")}), dcmqi_data / "ct-3slice",
                          tmp_path / "mid.dcm")
    back = read_segmentation(out)
    on_ct = back.on_grid(ct)
    np.testing.assert_array_equal(on_ct.labelmap.array[1], ref.array[1])
    assert not on_ct.labelmap.array[[0, 2]].any()


def test_not_a_seg(tmp_path, dcmqi_data):
    with pytest.raises(InputFileError, match="DICOM SEG"):
        read_segmentation(dcmqi_data / "ct-3slice" / "01.dcm")


@pytest.mark.parametrize(("seg_type", "compression"), [("binary", "jpeg2000"), ("labelmap", "rle")])
def test_compressed_segs_round_trip(tmp_path, dcmqi_data, seg_type, compression):
    src = read_segmentation(dcmqi_data / "liver_spine_seg.nrrd")
    out = write_dicom_seg(src, dcmqi_data / "ct-3slice", tmp_path / "c.dcm", seg_type=seg_type,
                          compression=compression)
    assert pydicom.dcmread(out, stop_before_pixels=True).file_meta.TransferSyntaxUID != pydicom.uid.ExplicitVRLittleEndian
    np.testing.assert_array_equal(read_segmentation(out).labelmap.array, src.labelmap.array)


def test_unsupported_compression_is_refused(tmp_path, dcmqi_data):
    src = read_segmentation(dcmqi_data / "liver_seg.nrrd")
    with pytest.raises(InputFileError, match="rle"):
        write_dicom_seg(src, dcmqi_data / "ct-3slice", tmp_path / "c.dcm", seg_type="binary", compression="rle")


def _with_uids(src_dir, dest, files):
    """Copy sample-data slices, restoring the UIDs the anonymiser blanked (SOP class/instance from the file meta)."""
    dest.mkdir()
    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    for f in files:
        ds = pydicom.dcmread(f)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.save_as(dest / f.name)


def test_sample_data_totalsegmentator_map_round_trip(tmp_path, sample_data):
    """Real JPEG 2000 series + TotalSegmentator label map stored y-flipped: SEG written and read back exactly."""
    series = sample_data.path("dicom_ct", "series")
    seg = read_segmentation(sample_data.path("dicom_ct", "seg_fast"), vocabulary="total")
    with pytest.raises(InputFileError, match="anonymised"):  # the sample files have blank UIDs
        write_dicom_seg(seg, series, tmp_path / "refused.dcm")
    files = sorted(p for p in series.iterdir() if p.is_file())
    _with_uids(series, tmp_path / "ct", files[8:12])  # four slices keep the test fast
    ct = read_image(tmp_path / "ct")
    on_ct = seg.on_grid(ct, resample=True)  # voxel centres coincide (same lattice, y flipped): exact
    expected = resample_to(read_image(sample_data.path("dicom_ct", "seg_fast")), ct).array
    np.testing.assert_array_equal(on_ct.labelmap.array, expected)
    out = write_dicom_seg(on_ct, tmp_path / "ct", tmp_path / "ts.dcm", compression="jpeg2000")
    back = read_segmentation(out).on_grid(ct)
    np.testing.assert_array_equal(back.labelmap.array, expected)
    present = {int(v) for v in np.unique(expected) if v}
    assert set(back.segments) == set(seg.segments) > present  # segments empty on this slab are kept, not dropped
    assert all(back.voxel_counts()[v] == 0 for v in set(seg.segments) - present)
    assert all(back.segments[v].name == seg.segments[v].name and back.segments[v].type == seg.segments[v].type
               for v in seg.segments)


def test_vocabulary_relabels_seg_segments_by_name(tmp_path, dcmqi_data, caplog):
    labels = pytest.importorskip("organsegbench.labels")
    vocab = labels.get_vocabulary("total")
    ref = read_image(dcmqi_data / "liver_spine_seg.nrrd")
    seg = Segmentation(ref.with_array(ref.array.astype(np.uint8)),
                       {1: SegmentInfo(1, "Liver"), 2: SegmentInfo(2, "Spleen")})  # display names, SEG numbers 1, 2
    out = write_dicom_seg(seg, dcmqi_data / "ct-3slice", tmp_path / "named.dcm")
    by_name = {n: v for v, n in vocab.labels.items()}
    back = read_segmentation(out, vocabulary="total")
    assert sorted(back.segments) == sorted([by_name["liver"], by_name["spleen"]])
    np.testing.assert_array_equal(back.segment_mask(by_name["liver"]), ref.array == 1)
    # a segment name outside the vocabulary: keep the SEG's own numbering and say so
    odd = read_segmentation(dcmqi_data / "partial_overlaps.dcm", vocabulary="total")
    assert sorted(odd.segments) == [1, 2, 3, 4, 5] and "not in vocabulary" in caplog.text


def test_label_values_without_segment_info_are_reported(tmp_path, dcmqi_data, caplog):
    ref = read_image(dcmqi_data / "liver_spine_seg.nrrd")
    seg = Segmentation(ref.with_array(ref.array.astype(np.uint8)), {1: SegmentInfo(1, "liver")})
    out = write_dicom_seg(seg, dcmqi_data / "ct-3slice", tmp_path / "partial.dcm")
    assert "[2] have no SegmentInfo" in caplog.text
    np.testing.assert_array_equal(read_segmentation(out).labelmap.array, (ref.array == 1).astype(np.uint8))


def test_fractional_seg_is_thresholded_at_half(tmp_path, rng):
    """A FRACTIONAL SEG (probabilities) written with highdicom directly reads as the >= 0.5 mask."""
    from pydicom.sr.codedict import codes

    shape = (4, 32, 32)
    write_dicom_series(Image(np.zeros(shape, dtype=np.int16), spacing=(1.0, 1.0, 2.0)), tmp_path / "ct")
    sources = [pydicom.dcmread(f) for f in sorted((tmp_path / "ct").iterdir())]
    prob = rng.random(shape).astype(np.float32)
    desc = hd.seg.SegmentDescription(
        segment_number=1, segment_label="liver probability", segmented_property_category=codes.SCT.Organ,
        segmented_property_type=codes.SCT.Liver, algorithm_type="AUTOMATIC",
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="test", family=codes.cid7162.ArtificialIntelligence, version="1"))
    fractional = hd.seg.Segmentation(
        source_images=sources, pixel_array=prob, segmentation_type="FRACTIONAL", segment_descriptions=[desc],
        series_instance_uid=hd.UID(), series_number=2, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="test", manufacturer_model_name="test", software_versions="1", device_serial_number="1",
        max_fractional_value=255)
    fractional.save_as(tmp_path / "frac.dcm")
    seg = read_segmentation(tmp_path / "frac.dcm")
    stored = np.round(prob * 255) / 255  # what the file holds (8-bit fractions)
    np.testing.assert_array_equal(seg.segment_mask(1), stored >= 0.5)
    assert seg.segments[1].type["meaning"] == "Liver" and seg.metadata["segmentation_type"] == "FRACTIONAL"
