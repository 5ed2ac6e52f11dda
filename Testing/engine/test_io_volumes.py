"""Volume IO: NIfTI/NRRD/MetaImage round trips, integrity checks, single DICOM files, orientation codes."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import synthetic

from organsegbench.errors import InputFileError
from organsegbench.io import Image, read_image, write_image
from organsegbench.io.volumes import check_nifti_integrity, detect_format, is_label_like, orientation_code

OBLIQUE = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


def _ct_like(rng: np.random.Generator, shape=(6, 20, 24)) -> Image:
    arr = rng.integers(-1000, 2000, size=shape).astype(np.int16)
    return Image(arr, spacing=(0.7, 0.9, 2.5), origin=(-12.5, 40.25, 100.0), direction=OBLIQUE)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_write_read_round_trip_keeps_voxels_and_geometry(tmp_path, rng, suffix):
    img = _ct_like(rng)
    path = write_image(img, tmp_path / f"ct{suffix}")
    back = read_image(path)
    assert back.array.dtype == img.array.dtype
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.spacing, img.spacing, atol=1e-6)
    np.testing.assert_allclose(back.origin, img.origin, atol=1e-4)
    np.testing.assert_allclose(back.direction, img.direction, atol=1e-6)
    assert back.metadata["source"] == str(path)


def test_outputs_are_compressed(tmp_path, rng):
    img = Image(np.zeros((8, 32, 32), dtype=np.int16))
    nii = write_image(img, tmp_path / "a.nii.gz")
    assert nii.read_bytes()[:2] == b"\x1f\x8b"  # gzip magic
    nrrd = write_image(img, tmp_path / "a.nrrd")
    header = nrrd.read_bytes().split(b"\n\n")[0]
    assert b"encoding: gzip" in header


def test_missing_file_names_the_path_and_similar_files(tmp_path):
    (tmp_path / "case1.nrrd").write_bytes(b"x")
    with pytest.raises(InputFileError) as exc:
        read_image(tmp_path / "case1.nii.gz")
    assert "case1.nii.gz" in exc.value.message and "does not exist" in exc.value.message
    assert "case1.nrrd" in exc.value.hint


def test_truncated_gz_nifti_is_refused(tmp_path, rng):
    good = write_image(_ct_like(rng, (10, 40, 40)), tmp_path / "ct.nii.gz")
    data = good.read_bytes()
    bad = tmp_path / "truncated.nii.gz"
    bad.write_bytes(data[: len(data) // 2])
    # SimpleITK alone would return a partly filled volume here; the integrity check must catch it
    assert sitk.ReadImage(str(bad)).GetSize() == (40, 40, 10)
    with pytest.raises(InputFileError) as exc:
        read_image(bad)
    assert "truncated.nii.gz" in exc.value.message and "truncated" in exc.value.message


def test_complete_gzip_stream_with_too_few_voxels_is_refused(tmp_path, rng):
    good = write_image(_ct_like(rng, (10, 40, 40)), tmp_path / "ct.nii.gz")
    raw = gzip.decompress(good.read_bytes())
    short = tmp_path / "short.nii.gz"
    short.write_bytes(gzip.compress(raw[: len(raw) - 1000]))  # valid gzip, but fewer bytes than the header says
    with pytest.raises(InputFileError, match="header promises"):
        check_nifti_integrity(short)


def test_truncated_uncompressed_nifti_is_refused(tmp_path, rng):
    good = write_image(_ct_like(rng), tmp_path / "ct.nii")
    bad = tmp_path / "cut.nii"
    bad.write_bytes(good.read_bytes()[:-500])
    with pytest.raises(InputFileError, match="cut.nii"):
        read_image(bad)


@pytest.mark.parametrize("name", ["garbage.nii.gz", "garbage.nii"])
def test_garbage_nifti_is_refused(tmp_path, name):
    bad = tmp_path / name
    bad.write_bytes(b"this is not a NIfTI file at all " * 40)
    with pytest.raises(InputFileError) as exc:
        read_image(bad)
    assert name in exc.value.message


def test_unknown_format_and_unsupported_output(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(InputFileError, match="cannot tell the format"):
        read_image(f)
    with pytest.raises(InputFileError, match="unsupported output extension"):
        write_image(Image(np.zeros((2, 3, 4))), tmp_path / "out.png")


def test_orientation_codes():
    assert orientation_code(Image(np.zeros((2, 2, 2)))) == "LPS"
    assert orientation_code(Image(np.zeros((2, 2, 2)), direction=np.diag([-1.0, -1.0, 1.0]))) == "RAS"


def test_is_label_like(rng):
    assert is_label_like(synthetic.image(synthetic.random_blobs((12, 16, 16), 4, seed=3)))
    assert not is_label_like(_ct_like(rng))
    assert not is_label_like(Image(rng.random((4, 5, 6))))
    assert not is_label_like(Image(np.full((2, 2, 2), -1, dtype=np.int16)))


def test_single_dicom_file(dcmqi_data):
    path = dcmqi_data / "ct-3slice" / "01.dcm"
    img = read_image(path)
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert img.shape == (1, 512, 512)
    np.testing.assert_array_equal(img.array[0], expected)
    np.testing.assert_allclose(img.origin, [float(v) for v in ds.ImagePositionPatient], atol=1e-4)
    assert img.metadata["modality"] == "CT" and img.metadata["series_uid"] == ds.SeriesInstanceUID
    assert detect_format(path) == "dicom"


def test_dicom_file_without_extension(tmp_path, dcmqi_data):
    target = tmp_path / "IM0001"
    shutil.copy(dcmqi_data / "ct-3slice" / "02.dcm", target)
    assert detect_format(target) == "dicom"
    assert read_image(target).shape == (1, 512, 512)


def test_enhanced_multiframe_dicom(dcmqi_data):
    mf = read_image(dcmqi_data / "23x38x3" / "multiframe" / "mf.dcm")
    series = read_image(dcmqi_data / "23x38x3" / "image")
    np.testing.assert_array_equal(mf.array, series.array)
    np.testing.assert_allclose(mf.origin, series.origin, atol=1e-4)


def test_dicom_seg_is_not_an_image(dcmqi_data):
    with pytest.raises(InputFileError) as exc:
        read_image(dcmqi_data / "liver.dcm")
    assert "read_segmentation" in exc.value.hint


def test_real_nrrd_label_map(dcmqi_data):
    img = read_image(dcmqi_data / "liver_seg.nrrd")
    ref = sitk.ReadImage(str(dcmqi_data / "liver_seg.nrrd"))
    np.testing.assert_array_equal(img.array, sitk.GetArrayFromImage(ref))
    assert img.size == ref.GetSize() and Path(img.metadata["source"]).name == "liver_seg.nrrd"


def test_4d_and_rgb_volumes_are_refused_clearly(tmp_path, rng):
    four_d = sitk.JoinSeries([sitk.GetImageFromArray(rng.random((3, 4, 5)).astype(np.float32))] * 2)
    sitk.WriteImage(four_d, str(tmp_path / "fmri.nii.gz"))
    with pytest.raises(InputFileError, match="fmri.nii.gz") as exc:
        read_image(tmp_path / "fmri.nii.gz")
    assert "4D" in exc.value.hint
    rgb = sitk.GetImageFromArray(rng.integers(0, 255, (3, 4, 5, 3)).astype(np.uint8), isVector=True)
    sitk.WriteImage(rgb, str(tmp_path / "rgb.nrrd"))
    with pytest.raises(InputFileError, match="components"):
        read_image(tmp_path / "rgb.nrrd")
