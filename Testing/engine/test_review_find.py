"""Finding the DICOM SEGs of a CT series from their ReferencedSeriesSequence (real dcmqi files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from organsegbench.errors import InputFileError
from organsegbench.review import find_segmentations_for_series, referenced_series_uids, series_uid_of


def test_finds_the_segs_referencing_the_ct(dcmqi_data: Path) -> None:
    uid = series_uid_of(dcmqi_data / "ct-3slice")
    found = [p.name for p in find_segmentations_for_series(uid, dcmqi_data)]
    assert "liver.dcm" in found
    assert all(uid in referenced_series_uids(dcmqi_data / name) for name in found)
    assert referenced_series_uids(dcmqi_data / "liver_seg.nrrd") == set()  # not DICOM


def test_unknown_series_finds_nothing_and_empty_folder_is_an_error(dcmqi_data: Path, tmp_path: Path) -> None:
    assert find_segmentations_for_series("1.2.3.4", dcmqi_data) == []
    with pytest.raises(InputFileError, match="no DICOM file"):
        series_uid_of(tmp_path)
