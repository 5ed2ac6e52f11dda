"""The downloader against a real HTTP server on 127.0.0.1, and safe archive extraction."""

from __future__ import annotations

import errno
import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from organsegbench import download as dl
from organsegbench.archive import list_members
from organsegbench.download import download, safe_extract, sha256_file, verify_sha256
from organsegbench.errors import ChecksumError, DownloadError, InputFileError, UnsafeArchiveError

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes: spans two read chunks


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; can cut the first response short, ignore Range, or fail with a status first."""

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        if srv.fail_first and len(srv.requests) == 1:
            self.send_error(srv.fail_first)
            return
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and not srv.ignore_range:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if srv.cut_after is not None and len(srv.requests) == 1:
            self.wfile.write(body[: srv.cut_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


Server = namedtuple("Server", "url httpd")


@pytest.fixture
def server():
    """A threaded HTTP server on an ephemeral 127.0.0.1 port, stopped after the test."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.files = {"/f.bin": PAYLOAD}
    httpd.requests = []
    httpd.cut_after = None
    httpd.ignore_range = False
    httpd.fail_first = None
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", httpd)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(dl, "RETRY_BACKOFF_S", 0.0)


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_full_download_verifies_sha256(server, tmp_path):
    out = download(server.url + "/f.bin", tmp_path / "sub" / "f.bin", sha256=SHA, size=len(PAYLOAD),
                   progress=False, timeout=5)
    assert out.read_bytes() == PAYLOAD
    assert sha256_file(out) == SHA
    assert not (tmp_path / "sub" / "f.bin.part").exists()
    assert server.httpd.requests == [("/f.bin", None)]


def test_verified_file_is_not_downloaded_again(server, tmp_path):
    dest = tmp_path / "f.bin"
    download(server.url + "/f.bin", dest, sha256=SHA, progress=False, timeout=5)
    download(server.url + "/f.bin", dest, sha256=SHA, progress=False, timeout=5)
    assert len(server.httpd.requests) == 1


def test_resume_after_cut(server, tmp_path):
    server.httpd.cut_after = 300_000
    out = download(server.url + "/f.bin", tmp_path / "f.bin", sha256=SHA, progress=False, timeout=5, retries=2)
    assert out.read_bytes() == PAYLOAD
    assert server.httpd.requests == [("/f.bin", None), ("/f.bin", "bytes=300000-")]


def test_cut_without_retries_keeps_partial_file_then_resumes(server, tmp_path):
    server.httpd.cut_after = 1000
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="connection closed after 1000"):
        download(server.url + "/f.bin", dest, sha256=SHA, progress=False, timeout=5, retries=0)
    assert (tmp_path / "f.bin.part").stat().st_size == 1000
    download(server.url + "/f.bin", dest, sha256=SHA, progress=False, timeout=5, retries=0)
    assert dest.read_bytes() == PAYLOAD
    assert server.httpd.requests[-1] == ("/f.bin", "bytes=1000-")


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.httpd.ignore_range = True
    (tmp_path / "f.bin.part").write_bytes(b"\xff" * 5000)  # wrong bytes: must not survive
    out = download(server.url + "/f.bin", tmp_path / "f.bin", sha256=SHA, progress=False, timeout=5)
    assert out.read_bytes() == PAYLOAD
    assert server.httpd.requests == [("/f.bin", "bytes=5000-")]


def test_wrong_checksum_deletes_file(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as err:
        download(server.url + "/f.bin", tmp_path / "f.bin", sha256=wrong, progress=False, timeout=5)
    assert SHA in str(err.value) and wrong in str(err.value)
    assert err.value.hint
    assert list(tmp_path.glob("f.bin*")) in ([], [tmp_path / "f.bin.lock"])


def test_wrong_size_is_refused(server, tmp_path):
    with pytest.raises(ChecksumError, match=f"{len(PAYLOAD)} bytes, expected 123 bytes"):
        download(server.url + "/f.bin", tmp_path / "f.bin", size=123, progress=False, timeout=5)
    assert not (tmp_path / "f.bin").exists()


def test_server_gone_gives_download_error(tmp_path):
    with socket.socket() as s:  # find a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/f.bin"
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path / "f.bin", progress=False, timeout=5, retries=1)
    assert url in err.value.message
    assert "import" in err.value.hint
    assert not (tmp_path / "f.bin").exists()


def test_http_404_is_final(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url + "/missing.bin", tmp_path / "m.bin", progress=False, timeout=5, retries=3)
    assert len(server.httpd.requests) == 1


def test_transient_503_is_retried(server, tmp_path):
    server.httpd.fail_first = 503
    out = download(server.url + "/f.bin", tmp_path / "f.bin", sha256=SHA, progress=False, timeout=5, retries=1)
    assert out.read_bytes() == PAYLOAD
    assert len(server.httpd.requests) == 2


def test_disk_full_while_writing(server, tmp_path, monkeypatch):
    real_open = open

    class _Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, block):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dl, "open", lambda *a, **k: _Full(real_open(*a, **k)), raising=False)
    with pytest.raises(DownloadError) as err:
        download(server.url + "/f.bin", tmp_path / "f.bin", progress=False, timeout=5)
    assert "disk space" in err.value.message
    assert str(tmp_path) in err.value.message
    assert str(len(PAYLOAD)) in err.value.message  # how much is needed, in bytes
    assert "ORGANSEGBENCH_CACHE" in err.value.hint


def test_disk_too_small_is_detected_before_writing(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: type("U", (), {"free": 10})())
    with pytest.raises(DownloadError, match=f"needs .*{len(PAYLOAD)} bytes"):
        download(server.url + "/f.bin", tmp_path / "f.bin", progress=False, timeout=5)
    assert not (tmp_path / "f.bin").exists()


def test_proxy_from_environment_is_used(server, tmp_path, monkeypatch):
    """urllib honours HTTP(S)_PROXY: the request for an unreachable host goes to our local server as a proxy."""
    target = "http://organsegbench-proxy-test.invalid/f.bin"
    server.httpd.files[target] = PAYLOAD  # a proxy receives the absolute URL as the request path
    for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.setenv("http_proxy", server.url)
    out = download(target, tmp_path / "f.bin", sha256=SHA, progress=False, timeout=5, retries=0)
    assert out.read_bytes() == PAYLOAD
    assert server.httpd.requests == [(target, None)]


def test_progress_callback(server, tmp_path):
    calls: list[tuple[int, int | None]] = []
    download(server.url + "/f.bin", tmp_path / "f.bin", progress=False, timeout=5,
             callback=lambda done, total: calls.append((done, total)))
    assert len(calls) >= 2
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert calls[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_verify_sha256(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    verify_sha256(p, hashlib.sha256(b"abc").hexdigest().upper())
    with pytest.raises(ChecksumError, match="expected 00"):
        verify_sha256(p, "00" * 32, delete=True)
    assert not p.exists()


# ------------------------------------------------------------------------------------------------- archives
def _tar(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for e in entries:
            if isinstance(e, tarfile.TarInfo):
                tf.addfile(e)
            else:
                info = tarfile.TarInfo(e[0])
                info.size = len(e[1])
                tf.addfile(info, io.BytesIO(e[1]))
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize("bad", [
    ("pkg/../../evil", b"x"),
    ("../evil", b"x"),
    ("/tmp/organsegbench_abs_evil", b"x"),
    _link("pkg/link", "../../outside"),
    _link("pkg/abslink", "/etc/passwd"),
    _link("pkg/hard", "../outside", tarfile.LNKTYPE),
], ids=["dotdot-nested", "dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out"])
def test_unsafe_tar_member_refused_and_nothing_written(tmp_path, bad):
    name = bad.name if isinstance(bad, tarfile.TarInfo) else bad[0]
    archive = _tar(tmp_path / "a.tar.gz", [("pkg/good.txt", b"fine"), bad, ("pkg/after.txt", b"late")])
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as err:
        safe_extract(archive, dest)
    assert repr(name) in err.value.message
    assert not dest.exists() or not any(dest.rglob("*"))
    assert not Path("/tmp/organsegbench_abs_evil").exists()


def test_prefix_filter_extracts_only_selected_members(tmp_path):
    archive = _tar(tmp_path / "a.tgz", [("pkg/setup.py", b"s"), ("pkg/tests/ref/a.txt", b"a"),
                                        ("pkg/tests/ref/sub/b.txt", b"bb"), ("pkg/tests/refx.txt", b"no"),
                                        ("../evil", b"outside the prefix: never looked at")])
    dest = tmp_path / "out"
    written = safe_extract(archive, dest, members="pkg/tests/ref/")
    assert sorted(p.relative_to(dest).as_posix() for p in written) == ["pkg/tests/ref/a.txt",
                                                                        "pkg/tests/ref/sub/b.txt"]
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "pkg/tests/ref/a.txt", "pkg/tests/ref/sub/b.txt"]
    assert list_members(archive, "pkg/tests/ref") == ["pkg/tests/ref/a.txt", "pkg/tests/ref/sub/b.txt"]


def test_prefix_that_matches_nothing(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [("pkg/a.txt", b"a")])
    with pytest.raises(InputFileError, match="no member under nothing/"):
        safe_extract(archive, tmp_path / "out", members="nothing/")


def test_symlink_inside_destination_is_allowed(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [("pkg/a.txt", b"a"), _link("pkg/alias.txt", "a.txt")])
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "alias.txt").read_bytes() == b"a"


def test_unsafe_zip_member_refused(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/good.txt", "fine")
        zf.writestr("../evil.txt", "bad")
    with pytest.raises(UnsafeArchiveError, match="'../evil.txt'"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_zip_extracts(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/good.txt", "fine")
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "good.txt").read_text() == "fine"


def test_truncated_archive_is_input_error(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [("pkg/a.bin", bytes(200_000))])
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="cannot read archive"):
        safe_extract(archive, tmp_path / "out")


def test_unsupported_archive_type(tmp_path):
    p = tmp_path / "a.rar"
    p.write_bytes(b"x")
    with pytest.raises(InputFileError, match="unsupported archive type: a.rar"):
        safe_extract(p, tmp_path / "out")
