"""DICOM series folders: listing, reading (JPEG 2000 included), several series in one folder, bad folders."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless

from organsegbench.errors import AmbiguousInputError, InputFileError
from organsegbench.io import Image, list_dicom_series, read_dicom_series, read_image, write_dicom_series

FLIPPED = np.diag([1.0, -1.0, -1.0])


def _volume(rng: np.random.Generator, shape=(5, 40, 48)) -> Image:
    arr = rng.integers(-1024, 1800, size=shape).astype(np.int16)
    return Image(arr, spacing=(0.8, 0.9, 2.5), origin=(-10.0, 5.0, 30.0), direction=FLIPPED)


def _decode_with_pydicom(files) -> np.ndarray:
    """Independent decode (pydicom + pylibjpeg), slices ordered along the normal by position."""
    dss = [pydicom.dcmread(f) for f in files]
    iop = np.asarray(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(np.asarray(d.ImagePositionPatient, dtype=float), normal)))
    return np.stack([d.pixel_array * float(d.get("RescaleSlope", 1)) + float(d.get("RescaleIntercept", 0))
                     for d in dss])


@pytest.mark.parametrize("jpeg2000", [False, True])
def test_written_series_reads_back_exactly(tmp_path, rng, jpeg2000):
    img = _volume(rng)
    files = write_dicom_series(img, tmp_path / "ct", jpeg2000=jpeg2000)
    if jpeg2000:
        assert pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID == JPEG2000Lossless
    back = read_image(tmp_path / "ct")
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.spacing, img.spacing, atol=1e-5)
    np.testing.assert_allclose(back.origin, img.origin, atol=1e-4)
    np.testing.assert_allclose(back.direction, img.direction, atol=1e-6)
    assert back.metadata["modality"] == "CT" and back.metadata["format"] == "dicom-series"
    np.testing.assert_array_equal(_decode_with_pydicom(files), img.array)


def test_real_uncompressed_series(dcmqi_data):
    folder = dcmqi_data / "ct-3slice"
    img = read_image(folder)
    assert img.size == (512, 512, 3)
    np.testing.assert_allclose(img.spacing, (0.810547, 0.810547, 1.0), atol=1e-5)
    np.testing.assert_array_equal(img.array, _decode_with_pydicom(sorted(folder.iterdir())))
    ds = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True)
    assert img.metadata["series_uid"] == ds.SeriesInstanceUID


def test_real_jpeg2000_series_from_sample_data(sample_data):
    folder = sample_data.path("dicom_ct", "series")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert pydicom.dcmread(files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID == JPEG2000Lossless
    img = read_image(folder)
    assert img.size == (512, 512, len(files))
    np.testing.assert_array_equal(img.array, _decode_with_pydicom(files))


def _two_series_folder(tmp_path, dcmqi_data):
    folder = tmp_path / "mixed"
    shutil.copytree(dcmqi_data / "ct-3slice", folder)
    ct = read_image(dcmqi_data / "ct-3slice")
    small = Image(np.clip(ct.array[:, ::8, ::8], -1024, 3000).astype(np.int16), spacing=(6.5, 6.5, 1.0),
                  origin=ct.origin)
    second = "1.2.826.0.1.3680043.8.498.1234567890"
    write_dicom_series(small, folder / "second", series_uid=second, series_description="second series")
    return folder, pydicom.dcmread(folder / "01.dcm", stop_before_pixels=True).SeriesInstanceUID, second


def test_folder_with_two_series_is_ambiguous(tmp_path, dcmqi_data):
    folder, first, second = _two_series_folder(tmp_path, dcmqi_data)
    with pytest.raises(AmbiguousInputError) as exc:
        read_image(folder)
    msg = exc.value.message
    assert first in msg and second in msg and "second series" in msg and "3 file(s)" in msg
    assert "--series" in exc.value.hint and "series_uid" in exc.value.hint
    assert read_image(folder, series_uid=first).size == (512, 512, 3)
    assert read_image(folder, series_uid=second).size == (64, 64, 3)


def test_unknown_series_uid_lists_the_series(tmp_path, dcmqi_data):
    folder, first, _ = _two_series_folder(tmp_path, dcmqi_data)
    with pytest.raises(InputFileError) as exc:
        read_dicom_series(folder, series_uid="1.2.3.4")
    assert "1.2.3.4" in exc.value.message and first in exc.value.message


def test_image_and_seg_in_one_folder_reads_the_image(tmp_path, dcmqi_data):
    folder = tmp_path / "with_seg"
    shutil.copytree(dcmqi_data / "ct-3slice", folder)
    shutil.copy(dcmqi_data / "liver.dcm", folder / "seg.dcm")
    modalities = sorted(s.modality for s in list_dicom_series(folder))
    assert modalities == ["CT", "SEG"]
    assert read_image(folder).metadata["modality"] == "CT"


def test_folder_without_dicom(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(InputFileError, match="no DICOM files"):
        read_image(tmp_path)


def test_folder_with_only_a_seg(tmp_path, dcmqi_data):
    shutil.copy(dcmqi_data / "liver.dcm", tmp_path / "seg.dcm")
    with pytest.raises(InputFileError, match="no image series"):
        read_image(tmp_path)


def test_write_dicom_series_refuses_float(tmp_path, rng):
    with pytest.raises(ValueError, match="integer"):
        write_dicom_series(Image(rng.random((2, 4, 4))), tmp_path)
