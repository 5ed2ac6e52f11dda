"""Weights catalog, cache, download (local HTTP server on 127.0.0.1) and import verification."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
import zipfile
from functools import partial

import pytest

from organsegbench.errors import ChecksumError, DownloadError, OrganSegBenchError, UnknownNameError
from organsegbench.models import weights as W


# ----------------------------------------------------------------------------------------------- real catalog
def test_catalog_entries_are_well_formed():
    cat = W.catalog()
    for name in ("sam_vit_b", "sam_vit_l", "sam_vit_h", "sam2.1_hiera_tiny", "sam2.1_hiera_small",
                 "sam2.1_hiera_base_plus", "sam2.1_hiera_large", "medsam_vit_b", "medsam2_latest", "segvol",
                 "totalseg_v2_organs", "moose_clin_ct_organs"):
        assert name in cat
    hashes = [e.sha256 for e in cat.values() if e.sha256]
    assert len(hashes) == len(set(hashes)), "two catalog entries share a sha256"
    for e in cat.values():
        assert e.licence and e.file
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256), e.name
        assert all(u.startswith("https://") for u in e.urls), e.name
        # every entry says where to get it
        assert e.urls or e.manual_url, e.name


def test_identify_names_real_checkpoints():
    tiny = W.catalog()["sam2.1_hiera_tiny"].sha256
    assert W.identify(tiny) == "sam2.1_hiera_tiny"
    assert W.identify(tiny.upper()) == "sam2.1_hiera_tiny"
    assert W.identify("0" * 64) is None


def test_unknown_weights_name_lists_close_matches():
    with pytest.raises(UnknownNameError, match="sam_vit_b"):
        W.entry("sam_vit_bb")


def test_missing_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(OrganSegBenchError) as err:
        W.require("sam_vit_b", root=tmp_path)
    assert "organsegbench weights download sam_vit_b" in err.value.hint
    assert "weights import sam_vit_b" in err.value.hint
    with pytest.raises(OrganSegBenchError) as err:
        W.require("medsam_vit_b", root=tmp_path)
    assert "--allow-unverified" in err.value.hint and "github.com/bowang-lab/MedSAM" in err.value.hint


# ----------------------------------------------------------------------------------------------- fake catalog
@pytest.fixture
def files(tmp_path):
    """Two fake checkpoints and a zipped nnU-Net folder, with their hashes."""
    srv = tmp_path / "srv"
    srv.mkdir()
    a = srv / "a.pth"
    a.write_bytes(b"checkpoint-A" * 5000)
    b = srv / "b.pt"
    b.write_bytes(b"checkpoint-B" * 3000)
    z = srv / "task.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("Dataset999_fake/plans.json", "{}")
        zf.writestr("Dataset999_fake/dataset.json", "{}")
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, z)}
    return srv, sha


@pytest.fixture
def server(files):
    srv, _ = files
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(srv))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fake_catalog(monkeypatch, files, server):
    srv, sha = files
    base, _ = server
    cat = {
        "model_a": W.WeightsEntry("model_a", "sam", "sam_state_dict", "a.pth", (f"{base}/a.pth",),
                                  (srv / "a.pth").stat().st_size, sha["a.pth"], "Apache-2.0"),
        "tiny_b": W.WeightsEntry("tiny_b", "sam2", "sam2_checkpoint", "b.pt", (f"{base}/b.pt",), None, sha["b.pt"],
                                 "Apache-2.0"),
        "nohash": W.WeightsEntry("nohash", "medsam2", "sam2_checkpoint", "c.pt", (f"{base}/b.pt",), None, None,
                                 "Apache-2.0"),
        "wrong": W.WeightsEntry("wrong", "sam", "sam_state_dict", "w.pth", (f"{base}/a.pth",), None, "1" * 64,
                                "Apache-2.0"),
        "task": W.WeightsEntry("task", "totalsegmentator", "nnunet_zip", "Dataset999_fake", (f"{base}/task.zip",),
                               None, sha["task.zip"], "Apache-2.0"),
    }
    monkeypatch.setattr(W, "catalog", lambda: cat)
    return cat


def test_download_verifies_and_caches(tmp_path, fake_catalog, server):
    root = tmp_path / "cache"
    p = W.download_weights("model_a", root=root, progress=False)
    assert p == root / "model_a" / "a.pth" and p.read_bytes().startswith(b"checkpoint-A")
    rec = W.record("model_a", root=root)
    assert rec["verified"] is True and rec["sha256"] == fake_catalog["model_a"].sha256
    # a second call needs no network
    _, httpd = server
    httpd.shutdown()
    assert W.download_weights("model_a", root=root, progress=False) == p
    assert W.weights_provenance("model_a", p)["weights_verified"] is True


def test_download_wrong_checksum_leaves_nothing(tmp_path, fake_catalog):
    root = tmp_path / "cache"
    with pytest.raises(ChecksumError):
        W.download_weights("wrong", root=root, progress=False)
    assert not W.is_present("wrong", root=root)
    assert not list((root / "wrong").glob("w.pth*")) or all(p.suffix == ".lock" for p in (root / "wrong").iterdir())


def test_download_server_gone(tmp_path, fake_catalog, server, monkeypatch):
    monkeypatch.setattr("organsegbench.download.RETRY_BACKOFF_S", 0.0)
    _, httpd = server
    httpd.shutdown()
    httpd.server_close()
    with pytest.raises(DownloadError):
        W.download_weights("model_a", root=tmp_path / "cache", progress=False)


def test_unknown_hash_is_never_silently_verified(tmp_path, fake_catalog):
    root = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="no published sha256"):
        W.download_weights("nohash", root=root, progress=False)
    assert not W.is_present("nohash", root=root)
    p = W.download_weights("nohash", root=root, progress=False, allow_unverified=True)
    rec = W.record("nohash", root=root)
    assert rec["verified"] is False and rec["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert W.weights_provenance("nohash", p)["weights_verified"] is False


def test_import_accepts_the_right_file(tmp_path, files, fake_catalog):
    srv, sha = files
    p = W.import_weights("model_a", srv / "a.pth", root=tmp_path / "c")
    assert W.record("model_a", root=tmp_path / "c")["verified"] is True
    assert p.read_bytes() == (srv / "a.pth").read_bytes()


def test_import_names_a_known_other_checkpoint(tmp_path, files, fake_catalog):
    srv, _ = files
    # the "tiny_b" file offered as the hash-less "nohash" model: refused even with allow_unverified
    with pytest.raises(ChecksumError, match=r"is the 'tiny_b' checkpoint") as err:
        W.import_weights("nohash", srv / "b.pt", root=tmp_path / "c", allow_unverified=True)
    assert "import it as tiny_b" in err.value.hint
    with pytest.raises(ChecksumError, match=r"is the 'model_a' checkpoint"):
        W.import_weights("tiny_b", srv / "a.pth", root=tmp_path / "c")
    assert not W.is_present("nohash", root=tmp_path / "c")


def test_import_wrong_checksum_and_missing_file(tmp_path, fake_catalog):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ChecksumError, match="matches no other known checkpoint"):
        W.import_weights("model_a", junk, root=tmp_path / "c")
    with pytest.raises(OrganSegBenchError, match="does not exist"):
        W.import_weights("model_a", tmp_path / "nope.pth", root=tmp_path / "c")


def test_import_unverified_needs_consent(tmp_path, fake_catalog):
    junk = tmp_path / "mine.pt"
    junk.write_bytes(b"some medsam2 file")
    with pytest.raises(ChecksumError, match="cannot be verified"):
        W.import_weights("nohash", junk, root=tmp_path / "c")
    W.import_weights("nohash", junk, root=tmp_path / "c", allow_unverified=True)
    assert W.record("nohash", root=tmp_path / "c")["verified"] is False


def test_archive_download_is_unpacked(tmp_path, fake_catalog):
    p = W.download_weights("task", root=tmp_path / "c", progress=False)
    assert p.is_dir() and (p / "plans.json").is_file()
    assert W.record("task", root=tmp_path / "c")["verified"] is True
    assert not (p.parent / "Dataset999_fake.zip").exists()


def test_import_unpacked_folder_needs_consent(tmp_path, fake_catalog):
    folder = tmp_path / "Dataset999_fake"
    (folder / "trainer" / "fold_0").mkdir(parents=True)
    (folder / "trainer" / "plans.json").write_text("{}")
    with pytest.raises(ChecksumError, match="unpacked folder"):
        W.import_weights("task", folder, root=tmp_path / "c")
    p = W.import_weights("task", folder, root=tmp_path / "c", allow_unverified=True)
    assert (p / "trainer" / "plans.json").is_file()
    assert W.record("task", root=tmp_path / "c")["verified"] is False
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OrganSegBenchError, match="no nnU-Net plans.json"):
        W.import_weights("task", empty, root=tmp_path / "c", allow_unverified=True)


def test_sam21_tiny_offered_as_medsam2_is_named(tmp_path, monkeypatch):
    """Real catalog: a file whose sha256 is SAM2.1-tiny's is refused as MedSAM2 and named (the hash function is
    replaced because the 156 MB checkpoint itself cannot be shipped in a test)."""
    import organsegbench.download as dl

    f = tmp_path / "MedSAM2_latest.pt"
    f.write_bytes(b"pretend")
    monkeypatch.setattr(dl, "sha256_file", lambda p, *a, **k: W.catalog()["sam2.1_hiera_tiny"].sha256)
    with pytest.raises(ChecksumError, match=r"is the 'sam2.1_hiera_tiny' checkpoint .*not 'medsam2_latest'") as err:
        W.import_weights("medsam2_latest", f, root=tmp_path / "c", allow_unverified=True)
    assert "weights import sam2.1_hiera_tiny" in err.value.hint


def test_download_resumes_after_a_cut(tmp_path, monkeypatch):
    """The server drops the connection half-way through the first response; the weights download resumes with an
    HTTP Range request and the file verifies."""
    monkeypatch.setattr("organsegbench.download.RETRY_BACKOFF_S", 0.0)
    payload = bytes(range(256)) * 400
    seen_ranges = []

    class Cutting(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            rng = self.headers.get("Range")
            seen_ranges.append(rng)
            if rng is None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
            self.send_header("Content-Length", str(len(payload) - start))
            self.end_headers()
            self.wfile.write(payload[start:])

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Cutting)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/w.pth"
        cat = {"w": W.WeightsEntry("w", "sam", "sam_state_dict", "w.pth", (url,), len(payload),
                                   hashlib.sha256(payload).hexdigest(), "Apache-2.0")}
        monkeypatch.setattr(W, "catalog", lambda: cat)
        p = W.download_weights("w", root=tmp_path / "c", progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert p.read_bytes() == payload
    assert seen_ranges[0] is None and any(r and r.startswith("bytes=") for r in seen_ranges[1:])
    assert W.record("w", root=tmp_path / "c")["verified"] is True
