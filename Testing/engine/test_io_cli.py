"""`organsegbench info` and `organsegbench convert`, checked against independent computations; bad inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import synthetic

from organsegbench.cli import main
from organsegbench.io import Image, read_image, read_segmentation, write_dicom_series, write_image


def _info_json(capsys, *args) -> dict:
    assert main(["info", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _sitk_volumes_ml(path) -> dict[int, float]:
    """Independent volumes: SimpleITK's label shape statistics (physical size in mm³ / 1000)."""
    img = sitk.ReadImage(str(path))
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(img, sitk.sitkUInt16))
    return {int(lab): stats.GetPhysicalSize(lab) / 1000.0 for lab in stats.GetLabels()}


def test_info_on_dicom_series(capsys, dcmqi_data):
    folder = dcmqi_data / "ct-3slice"
    report = _info_json(capsys, folder)
    assert report["kind"] == "image" and report["geometry"]["size"] == [512, 512, 3]
    assert report["geometry"]["orientation"] == "LPS"
    dss = [pydicom.dcmread(f) for f in sorted(folder.iterdir())]
    hu = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in dss])
    assert report["intensity"]["min"] == hu.min() and report["intensity"]["max"] == hu.max()
    np.testing.assert_allclose(report["geometry"]["spacing_mm"][:2], [float(v) for v in dss[0].PixelSpacing])
    assert main(["info", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "512, 512, 3" in text and "orientation: LPS" in text


def test_info_on_liver_seg(capsys, dcmqi_data):
    report = _info_json(capsys, dcmqi_data / "liver.dcm")
    assert report["kind"] == "segmentation" and len(report["segments"]) == 1
    row = report["segments"][0]
    expected = _sitk_volumes_ml(dcmqi_data / "liver_seg.nrrd")[1]
    assert row["name"] == "Liver" and row["volume_ml"] == pytest.approx(expected, rel=1e-6)
    assert main(["info", str(dcmqi_data / "liver.dcm")]) == 0
    text = capsys.readouterr().out
    assert "Liver" in text and f"{expected:.3f}" in text


def test_info_on_partial_overlaps(capsys, dcmqi_data):
    report = _info_json(capsys, dcmqi_data / "partial_overlaps.dcm")
    assert report["overlapping"] and [r["label"] for r in report["segments"]] == [1, 2, 3, 4, 5]
    expected = {}
    for i in (1, 2, 3):
        expected.update(_sitk_volumes_ml(dcmqi_data / f"partial_overlaps-{i}.nrrd"))
    for r in report["segments"]:
        assert r["volume_ml"] == pytest.approx(expected[r["label"]], rel=1e-6)
    assert {r["name"] for r in report["segments"]} == {"GREEN", "ORANGE", "PURPLE", "LIGHT_BLUE", "DARK_BLUE"}


def test_info_on_nrrd_label_map(capsys, dcmqi_data):
    path = dcmqi_data / "liver_spine_seg.nrrd"
    report = _info_json(capsys, path)
    expected = _sitk_volumes_ml(path)
    assert report["kind"] == "segmentation"
    assert {r["label"]: r["volume_ml"] for r in report["segments"]} == pytest.approx(expected, rel=1e-6)


def test_info_on_nifti_label_map_and_image(tmp_path, capsys, rng):
    arr = synthetic.random_blobs((12, 30, 28), 3, seed=5)
    img = Image(arr, spacing=(0.75, 0.8, 2.5), origin=(1.0, 2.0, 3.0), direction=np.diag([-1.0, -1.0, 1.0]))
    path = write_image(img, tmp_path / "labels.nii.gz")
    report = _info_json(capsys, path)
    assert report["geometry"]["orientation"] == "RAS"
    vols = {r["label"]: r["volume_ml"] for r in report["segments"]}
    expected = {int(v): np.count_nonzero(arr == v) * 0.75 * 0.8 * 2.5 / 1000 for v in np.unique(arr) if v}
    assert vols == pytest.approx(expected) and vols == pytest.approx(_sitk_volumes_ml(path))
    assert main(["info", str(path)]) == 0 and "--vocabulary NAME" in capsys.readouterr().out  # unnamed: say how
    many = rng.permutation(400).reshape(4, 10, 10).astype(np.int16)  # 400 distinct values: not label-like
    ct = write_image(Image(many), tmp_path / "ct.nii.gz")
    assert _info_json(capsys, ct)["kind"] == "image"
    assert len(_info_json(capsys, ct, "--labels")["segments"]) == 399  # forced: every non-zero value a label
    assert main(["info", str(ct), "--labels"]) == 0 and "399 segment(s)" in capsys.readouterr().out
    negative = write_image(Image(many - 500), tmp_path / "neg.nii.gz")
    assert main(["info", str(negative), "--labels"]) == 2
    assert "negative values" in capsys.readouterr().err


def test_convert_nrrd_to_seg_and_back(tmp_path, capsys, dcmqi_data):
    seg_path = tmp_path / "liver.dcm"
    assert main(["convert", str(dcmqi_data / "liver_seg.nrrd"), str(seg_path), "--reference-series",
                 str(dcmqi_data / "ct-3slice"), "--algorithm", "test"]) == 0
    assert str(seg_path) in capsys.readouterr().out
    back = read_segmentation(seg_path)
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(dcmqi_data / "liver_seg.nrrd")))
    np.testing.assert_array_equal(back.labelmap.array, ref)
    assert back.segments[1].algorithm_name == "test" and back.segments[1].type["value"] == "91723000"
    nii = tmp_path / "liver.nii.gz"
    assert main(["convert", str(seg_path), str(nii)]) == 0
    np.testing.assert_array_equal(read_image(nii).array, ref)
    assert read_segmentation(nii).segments[1].algorithm_name == "test"  # sidecar carries the metadata


def test_convert_with_vocabulary_writes_its_codes(tmp_path, dcmqi_data):
    labels = pytest.importorskip("organsegbench.labels")
    vocab = labels.get_vocabulary("total")
    liver_value = next(v for v, n in vocab.labels.items() if n == "liver")
    ref = read_image(dcmqi_data / "liver_seg.nrrd")
    src = write_image(ref.with_array((ref.array == 1).astype(np.uint8) * liver_value), tmp_path / "tot.nii.gz")
    out = tmp_path / "tot.dcm"
    assert main(["convert", str(src), str(out), "--reference-series", str(dcmqi_data / "ct-3slice"),
                 "--vocabulary", "total"]) == 0
    item = pydicom.dcmread(out, stop_before_pixels=True).SegmentSequence[0]
    assert item.SegmentLabel == "liver"
    assert item.SegmentedPropertyTypeCodeSequence[0].CodeValue == str(vocab.structure("liver").type.value)
    back = read_segmentation(out)
    assert list(back.segments) == [liver_value]  # the label value survives the round trip


def test_convert_dicom_series_to_nrrd(tmp_path, dcmqi_data):
    out = tmp_path / "ct.nrrd"
    assert main(["convert", str(dcmqi_data / "ct-3slice"), str(out)]) == 0
    a, b = read_image(out), read_image(dcmqi_data / "ct-3slice")
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.origin, b.origin, atol=1e-4)


# ------------------------------------------------------------------------------------------------ bad inputs
def test_cli_missing_file(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.nii.gz")]) == 2
    assert "nope.nii.gz" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "nope.nii.gz"), str(tmp_path / "o.nii.gz")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_truncated_nifti(tmp_path, capsys, rng):
    good = write_image(Image(rng.integers(0, 1000, (10, 50, 50)).astype(np.int16)), tmp_path / "g.nii.gz")
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(good.read_bytes()[:300])
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.nii.gz" in err and "truncated" in err and "fix:" in err


def test_cli_several_series(tmp_path, capsys, dcmqi_data):
    folder = tmp_path / "two"
    shutil.copytree(dcmqi_data / "ct-3slice", folder)
    other = "1.2.826.0.1.3680043.8.498.99"
    write_dicom_series(Image(np.zeros((2, 8, 8), dtype=np.int16)), folder / "b", series_uid=other)
    assert main(["info", str(folder)]) == 2
    err = capsys.readouterr().err
    first = pydicom.dcmread(folder / "01.dcm", stop_before_pixels=True).SeriesInstanceUID
    assert first in err and other in err and "--series" in err
    assert main(["info", str(folder), "--series", other, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["geometry"]["size"] == [8, 8, 2] and report["kind"] == "image"  # all-zero, still an image


def test_cli_seg_without_ct(tmp_path, capsys, dcmqi_data):
    shutil.copy(dcmqi_data / "liver.dcm", tmp_path / "liver.dcm")
    report = _info_json(capsys, tmp_path / "liver.dcm")
    assert report["segments"][0]["voxels"] > 0
    assert main(["convert", str(tmp_path / "liver.dcm"), str(tmp_path / "liver.nrrd")]) == 0


def test_cli_different_grids(tmp_path, capsys, dcmqi_data):
    small = dcmqi_data / "24x38x3" / "nrrd" / "label.nrrd"
    assert main(["convert", str(small), str(tmp_path / "x.dcm"), "--reference-series",
                 str(dcmqi_data / "ct-3slice")]) == 2
    err = capsys.readouterr().err
    assert "(24, 38, 3)" in err and "(512, 512, 3)" in err and "--resample" in err
    assert main(["convert", str(small), str(tmp_path / "x.nii.gz"), "--reference-series",
                 str(dcmqi_data / "ct-3slice")]) == 2
    err = capsys.readouterr().err
    assert "(24, 38, 3)" in err and "(512, 512, 3)" in err and "--resample" in err
    assert main(["convert", str(small), str(tmp_path / "x.nii.gz"), "--reference-series",
                 str(dcmqi_data / "ct-3slice"), "--resample"]) == 0
    assert read_image(tmp_path / "x.nii.gz").size == (512, 512, 3)


def test_cli_seg_output_needs_reference_and_keeps_overlaps(tmp_path, capsys, dcmqi_data):
    assert main(["convert", str(dcmqi_data / "liver_seg.nrrd"), str(tmp_path / "y.dcm")]) == 2
    assert "--reference-series" in capsys.readouterr().err
    assert main(["convert", str(dcmqi_data / "partial_overlaps.dcm"), str(tmp_path / "po.nii.gz")]) == 2
    assert "overlap" in capsys.readouterr().err and not (tmp_path / "po.nii.gz").exists()


def test_info_on_sample_totalsegmentator_output(capsys, sample_data):
    path = sample_data.path("abdomen_ct", "seg_normal")
    labels = pytest.importorskip("organsegbench.labels")
    vocab = labels.get_vocabulary("total")
    report = _info_json(capsys, path, "--vocabulary", "total")
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    voxel_ml = float(np.prod(sitk.ReadImage(str(path)).GetSpacing())) / 1000.0
    assert [r["label"] for r in report["segments"]] == [int(v) for v in np.unique(arr) if v]
    for r in report["segments"]:
        assert r["name"] == vocab.labels[r["label"]]
        assert r["volume_ml"] == pytest.approx(np.count_nonzero(arr == r["label"]) * voxel_ml)
    assert report["geometry"]["orientation"] == "RAS"  # TotalSegmentator keeps the NIfTI's RAS-style axes


def test_convert_synthetic_multilabel_to_seg_keeps_masks_and_codes(tmp_path, rng):
    from organsegbench.io import Segmentation, SegmentInfo, write_segmentation

    shape = (5, 36, 40)
    ct = Image(rng.integers(-1000, 1000, size=shape).astype(np.int16), spacing=(0.7, 0.7, 2.0),
               origin=(-30.0, -40.0, 100.0))
    write_dicom_series(ct, tmp_path / "ct")
    blobs = synthetic.random_blobs(shape, 3, seed=21)
    codes = {3: {"value": "10200004", "scheme": "SCT", "meaning": "Liver"},
             4: {"value": "78961009", "scheme": "SCT", "meaning": "Spleen"},
             12: {"value": "64033007", "scheme": "SCT", "meaning": "Kidney"}}
    labels = np.zeros(shape, dtype=np.uint8)
    for i, value in enumerate(codes, start=1):
        labels[blobs == i] = value
    category = {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"}
    segs = {v: SegmentInfo(v, c["meaning"].lower(), category=category, type=c, color=(v * 20, 100, 50))
            for v, c in codes.items() if (labels == v).any()}
    nii = write_segmentation(Segmentation(ct.with_array(labels), segs), tmp_path / "organs.nii.gz")
    out = tmp_path / "organs.dcm"
    assert main(["convert", str(nii), str(out), "--reference-series", str(tmp_path / "ct")]) == 0
    back = read_segmentation(out).on_grid(read_image(tmp_path / "ct"))
    np.testing.assert_array_equal(back.labelmap.array, labels)
    for v, info in segs.items():
        got = back.segments[v]
        assert (got.name, got.type, got.category, got.color) == (info.name, info.type, category, info.color)


def test_cli_several_series_one_without_uid_says_how_to_pick_it(tmp_path, capsys, dcmqi_data, sample_data):
    folder = tmp_path / "mixed"
    shutil.copytree(dcmqi_data / "ct-3slice", folder)
    shutil.copytree(sample_data.root / "example_ct_dicom", folder / "anonymised")  # no SeriesInstanceUID
    assert main(["info", str(folder)]) == 2
    assert '--series ""' in capsys.readouterr().err
    assert main(["info", str(folder), "--series", "", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["geometry"]["size"] == [512, 512, 20]
