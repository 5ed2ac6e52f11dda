"""Sample data: the real TotalSegmentator reference files (manifest, traps, idempotence) and fetch failures."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import SimpleITK as sitk

from organsegbench import sample_data as sd
from organsegbench.errors import ChecksumError, DownloadError, UnknownNameError, UnsafeArchiveError
from organsegbench.io.geometry import resample_to, same_grid, same_space
from organsegbench.io.image import Image
from organsegbench.sample_data import source

DIST = sd.TOTALSEG_SDIST
PREFIX = sd.load_manifest()["source"]["archive_prefix"]


@pytest.fixture(autouse=True)
def _local_no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr("organsegbench.download.RETRY_BACKOFF_S", 0.0)


def _read_series(folder) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


# ---------------------------------------------------------------------------------------------- real data
def test_manifest_files_all_exist_after_fetch(sample_data):
    assert sample_data.missing() == []
    assert {"abdomen_ct", "dicom_ct", "chest_cta", "mr"} <= set(sample_data.cases)
    for role in ("image", "seg_normal", "seg_fast"):
        assert sample_data.path("abdomen_ct", role).is_file()
    assert len(list(sample_data.path("dicom_ct", "series").iterdir())) == 20
    assert (sample_data.root / sd.MARKER).is_file()


def test_manifest_matches_the_real_files(sample_data):
    """Every geometry and label fact in the manifest is what SimpleITK reads from the file."""
    checked = 0
    for case in sample_data.cases.values():
        for f in case.files.values():
            if f.kind == "mask_folder":
                names = sorted(p.name[:-7] for p in f.path.glob("*.nii.gz"))
                assert len(names) == f.info["n_masks"]
                non_empty = [n for n in names if sitk.GetArrayFromImage(sitk.ReadImage(str(f.path / f"{n}.nii.gz"))).any()]
                assert non_empty == f.info["non_empty"], f.role
                continue
            img = _read_series(f.path) if f.kind == "dicom_series" else sitk.ReadImage(str(f.path))
            assert list(img.GetSize()) == f.info["size_xyz"], f.path
            np.testing.assert_allclose(img.GetSpacing(), f.info["spacing_mm"], atol=1e-5)
            np.testing.assert_allclose(img.GetOrigin(), f.info["origin_mm"], atol=1e-3)
            np.testing.assert_allclose(img.GetDirection(), f.info["direction"], atol=1e-5)
            if f.kind in ("labelmap", "mask"):
                values = np.unique(sitk.GetArrayFromImage(img))
                assert values[values != 0].tolist() == f.info["labels_present"], f.path
            checked += 1
    assert checked >= 15


def test_dicom_seg_is_y_flipped_but_same_space(sample_data):
    case = sample_data.case("dicom_ct")
    series = Image.from_sitk(_read_series(case.path("series")))
    seg = Image.from_sitk(sitk.ReadImage(str(case.path("seg_fast"))))
    assert series.shape == seg.shape == (20, 512, 512)
    assert not same_grid(series, seg)
    assert same_space(series, seg)
    on_series = resample_to(seg, series, is_label=True)
    assert same_grid(on_series, series)
    raw = seg.array
    assert not np.array_equal(raw, on_series.array)  # comparing raw arrays is wrong ...
    np.testing.assert_array_equal(on_series.array, raw[:, ::-1, :])  # ... the grids differ by a y flip only
    labels, counts = np.unique(raw, return_counts=True)
    labels2, counts2 = np.unique(on_series.array, return_counts=True)
    np.testing.assert_array_equal(labels, labels2)  # nearest-neighbour re-indexing is exact
    np.testing.assert_array_equal(counts, counts2)


def test_ct_sm_is_a_slab_that_keeps_the_full_affine(sample_data):
    sm = sitk.ReadImage(str(sample_data.path("abdomen_ct", "image")))
    full = sitk.ReadImage(str(sample_data.path("abdomen_ct_full", "image")))
    a_sm, a_full = sitk.GetArrayFromImage(sm), sitk.GetArrayFromImage(full)
    offsets = [k for k in range(a_full.shape[0] - a_sm.shape[0] + 1) if np.array_equal(a_full[k:k + 30], a_sm)]
    assert offsets == [82]
    assert sm.GetOrigin() == full.GetOrigin()  # the trap: same origin although it starts 82 slices later
    note = " ".join(sample_data.case("abdomen_ct").notes)
    assert "82" in note and "affine" in note


def test_chest_cta_masks_resample_losslessly_onto_the_image(sample_data):
    case = sample_data.case("chest_cta")
    image = Image.from_sitk(sitk.ReadImage(str(case.path("image"))))
    for role in ("heart", "aorta", "pulmonary_artery"):
        mask = Image.from_sitk(sitk.ReadImage(str(case.path(role))))
        on_image = resample_to(mask, image, is_label=True)
        assert int((on_image.array > 0).sum()) == int((mask.array > 0).sum()) > 1000, role


def test_second_fetch_touches_neither_network_nor_archive(sample_data, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("fetch() must not download or extract when the data are complete")

    monkeypatch.setattr(sd, "obtain", boom)
    monkeypatch.setattr("organsegbench.download.download", boom)
    monkeypatch.setattr("organsegbench.download.safe_extract", boom)
    monkeypatch.setattr(source, "pip_download", boom)
    again = sd.fetch(progress=False)
    assert again.root == sample_data.root
    assert again.missing() == []


def test_cli_lists_root_and_cases(sample_data, capsys):
    from organsegbench.cli import main

    assert main(["sample-data", "--list", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert str(sample_data.root) in out
    assert "example_seg_dicom.nii.gz" in out and "y-flipped" in out
    for name in sample_data.cases:
        assert name in out


# ------------------------------------------------------------------------------------------- bad inputs
def test_unknown_case_and_role_list_close_matches(sample_data):
    with pytest.raises(UnknownNameError, match="abdomen_ct"):
        sample_data.case("abdomen")
    with pytest.raises(UnknownNameError, match="seg_fast"):
        sample_data.path("abdomen_ct", "seg_fats")


def _fake_archive(members: list[tuple[str, bytes]], pad_to: int | None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:  # plain tar: zero padding keeps it a valid archive
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    return data + bytes(pad_to - len(data)) if pad_to else data


class _Index(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        srv = self.server
        srv.requests.append(self.path)
        body, ctype = srv.routes.get(self.path, (None, None))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def index_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    httpd.daemon_threads = True
    httpd.routes = {}
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _serve_fake(httpd, fake: bytes, style: str, listed_sha: str | None) -> None:
    file_path = f"/files/{DIST.filename}"
    if style == "json":
        entry = {"filename": DIST.filename, "url": file_path, "hashes": {"sha256": listed_sha} if listed_sha else {}}
        httpd.routes["/simple/totalsegmentator/"] = (json.dumps({"files": [entry]}).encode(),
                                                     "application/vnd.pypi.simple.v1+json")
    else:
        frag = f"#sha256={listed_sha}" if listed_sha else ""
        html = f'<html><body><a href="../..{file_path}{frag}">{DIST.filename}</a></body></html>'
        httpd.routes["/simple/totalsegmentator/"] = (html.encode(), "text/html")
    httpd.routes[file_path] = (fake, "application/octet-stream")


@pytest.mark.parametrize("style", ["json", "html"])
def test_wrong_sha256_archive_is_discarded_and_nothing_extracted(index_server, tmp_path, style):
    url, httpd = index_server
    fake = _fake_archive([(PREFIX + "example_ct.nii.gz", b"not a CT")], pad_to=DIST.size)  # right size, wrong sha
    _serve_fake(httpd, fake, style, listed_sha=None)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError) as err:
        sd.fetch(cache=cache, progress=False, index_url=url + "/simple/")
    assert DIST.sha256 in str(err.value)
    assert f"/files/{DIST.filename}" in httpd.requests  # it was really downloaded, then refused
    assert not (cache / "downloads" / DIST.filename).exists()
    assert not sd.sample_root(cache).exists()
    assert not any(p.is_file() for p in (cache / "sample_data").rglob("*") if p.suffix != ".lock")


def test_index_listing_another_sha256_is_refused_before_download(index_server, tmp_path, monkeypatch):
    url, httpd = index_server
    _serve_fake(httpd, b"whatever", "json", listed_sha="ab" * 32)
    monkeypatch.setenv("PIP_INDEX_URL", url + "/simple/")  # the index-URL override through pip's variable
    monkeypatch.delenv("ORGANSEGBENCH_INDEX_URL", raising=False)
    with pytest.raises(ChecksumError, match="ab" * 32):
        sd.fetch(cache=tmp_path / "cache", progress=False)
    assert httpd.requests == ["/simple/totalsegmentator/"]


def test_index_failure_falls_back_to_pip_and_still_verifies(index_server, tmp_path, monkeypatch):
    url, httpd = index_server  # no routes: the index answers 404
    calls = []

    def fake_pip(dist, folder, timeout=600):
        calls.append(dist.requirement)
        p = folder / dist.filename
        p.write_bytes(_fake_archive([(PREFIX + "x.txt", b"x")], pad_to=None))
        return p

    monkeypatch.setattr(source, "pip_download", fake_pip)
    with pytest.raises(ChecksumError, match=f"expected {DIST.size} bytes"):
        sd.fetch(cache=tmp_path / "cache", progress=False, index_url=url + "/simple/")
    assert calls == ["totalsegmentator==2.18.0"]
    assert not (tmp_path / "cache" / "downloads" / DIST.filename).exists()


def test_offline_gives_download_error(index_server, tmp_path, monkeypatch):
    url, httpd = index_server

    def pip_offline(dist, folder, timeout=600):
        raise DownloadError("`pip download totalsegmentator==2.18.0` failed: no network", hint="check the network")

    monkeypatch.setattr(source, "pip_download", pip_offline)
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as err:
        sd.fetch(cache=cache, progress=False, index_url=url + "/simple/")
    assert "HTTP 404" in err.value.message and "pip download" in err.value.message  # both routes named
    assert str(cache / "downloads") in err.value.hint and DIST.sha256 in err.value.hint  # the offline way out


def test_archive_member_with_dotdot_is_refused(tmp_path):
    archive = tmp_path / DIST.filename
    archive.write_bytes(_fake_archive([(PREFIX + "example_ct.nii.gz", b"ct"),
                                       (PREFIX + "../../../../evil.txt", b"escape")], pad_to=None))
    root = sd.sample_root(tmp_path / "cache")
    root.parent.mkdir(parents=True)
    with pytest.raises(UnsafeArchiveError, match="evil.txt"):
        sd._extract(archive, root, DIST, sd.load_manifest(), progress=False)
    assert not root.exists()
    assert not (tmp_path / "evil.txt").exists()
    assert [p.name for p in root.parent.iterdir()] == []  # staging folder removed, nothing left behind


def test_index_url_precedence(monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "https://pip.example/simple")
    monkeypatch.setenv("ORGANSEGBENCH_INDEX_URL", "https://osb.example/simple")
    assert source.configured_index() == "https://osb.example/simple/"
    monkeypatch.delenv("ORGANSEGBENCH_INDEX_URL")
    assert source.configured_index() == "https://pip.example/simple/"
    assert source.configured_index("http://127.0.0.1:1/x") == "http://127.0.0.1:1/x/"


def test_cli_wrong_sha256_exits_nonzero_with_fix(index_server, tmp_path, monkeypatch, capsys):
    from organsegbench.cli import main

    url, httpd = index_server
    _serve_fake(httpd, _fake_archive([(PREFIX + "example_ct.nii.gz", b"x")], pad_to=DIST.size), "json", None)
    monkeypatch.setenv("ORGANSEGBENCH_INDEX_URL", url + "/simple/")
    cache = tmp_path / "cache"
    assert main(["sample-data", "--cache", str(cache), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"expected {DIST.sha256}" in err and "fix:" in err
    assert not sd.sample_root(cache).exists()


def test_describe_tool_reproduces_the_committed_manifest(sample_data):
    """The maintainer tool re-measures every fact; on the pinned archive it must change nothing."""
    import copy

    from organsegbench.sample_data import describe

    manifest = sd.load_manifest()
    stale = copy.deepcopy(manifest)
    stale["cases"]["dicom_ct"]["files"]["seg_fast"]["labels_present"] = [1]
    assert describe.refresh(stale, sample_data.root) == manifest
