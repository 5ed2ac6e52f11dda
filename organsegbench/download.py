"""Verified downloads and safe archive extraction.

:func:`download` fetches one URL into a file with a progress bar, resumes an interrupted download with an HTTP
``Range`` request, checks the size (bytes) and sha256, and turns every failure into an
:class:`~organsegbench.errors.OrganSegBenchError` that says what to do. It uses :mod:`urllib`, so the usual proxy
variables (``HTTPS_PROXY``, ``NO_PROXY``) are honoured. :func:`safe_extract` unpacks ``.tar.gz``/``.tgz``/``.zip``
archives and refuses any member that would land outside the destination folder.

The archive helpers live in :mod:`organsegbench.archive` and are re-exported here.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from organsegbench.archive import safe_extract
from organsegbench.errors import ChecksumError, DownloadError

log = logging.getLogger(__name__)

#: called as ``callback(bytes_done, total_bytes_or_None)`` while a download or an extraction progresses
ProgressCallback = Callable[[int, int | None], None]

CHUNK_BYTES = 1 << 20
#: seconds to wait before retry ``n`` is ``RETRY_BACKOFF_S * n`` (tests set it to 0)
RETRY_BACKOFF_S = 1.0
#: HTTP statuses worth retrying; every other 4xx is final
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "organsegbench-downloader (+https://github.com/OrganSegBench/SlicerOrganSegBench)"

__all__ = ["ProgressCallback", "download", "safe_extract", "sha256_file", "verify_sha256"]


def sha256_file(path: str | os.PathLike[str], chunk_bytes: int = CHUNK_BYTES) -> str:
    """Hex sha256 of the file at ``path`` (read in chunks, so any size works)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike[str], expected: str, delete: bool = False,
                  what: str | None = None) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has sha256 ``expected`` (hex, any case).

    Args:
        path: file to check.
        expected: the sha256 it must have.
        delete: remove the file when it does not match.
        what: how to name the file in the message (for example its URL); defaults to the path.
    """
    actual = sha256_file(path)
    if actual.lower() == expected.lower():
        return
    if delete:
        Path(path).unlink(missing_ok=True)
    raise ChecksumError(
        f"{what or path} has sha256 {actual}, expected {expected.lower()}"
        + (" (the file was deleted)" if delete else ""),
        hint="download it again; if it keeps failing the source changed or the copy is damaged, so obtain the "
             "file from a trusted source and check it with `sha256sum`",
    )


def _size_error(what: str, actual: int, expected: int, deleted: bool) -> ChecksumError:
    return ChecksumError(
        f"{what} is {actual} bytes, expected {expected} bytes" + (" (the file was deleted)" if deleted else ""),
        hint="download it again; a different size means a truncated transfer or a changed source file",
    )


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _disk_full(folder: Path, needed: int | None, exc: OSError | None = None) -> DownloadError:
    free = shutil.disk_usage(folder).free
    need = f"{_human(needed)} ({needed} bytes)" if needed is not None else "more space"
    return DownloadError(
        f"not enough disk space in {folder}: the download needs {need}, {_human(free)} free"
        + (f" ({exc.strerror})" if exc is not None and exc.strerror else ""),
        hint=f"free at least {need} in {folder}, or point $ORGANSEGBENCH_CACHE at a disk with room; the partial "
             "file is kept so the download resumes where it stopped",
    )


def _offline_error(url: str, reason: object) -> DownloadError:
    return DownloadError(
        f"could not download {url}: {reason}",
        hint="check the network connection (and HTTPS_PROXY if you are behind a proxy), or fetch the file "
             "elsewhere and `import` the local copy",
    )


class _Cut(Exception):
    """The connection ended before all bytes arrived (the partial file is kept for a resume)."""


def _open(url: str, offset: int, timeout: float, headers: dict[str, str] | None):
    req_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
    if offset:
        req_headers["Range"] = f"bytes={offset}-"
    return urlopen(urllib.request.Request(url, headers=req_headers), timeout=timeout)


def urlopen(request: urllib.request.Request | str, timeout: float):
    """``urllib`` open with a fresh opener, so proxy variables (``HTTPS_PROXY``, ``NO_PROXY``) are read now.

    (``urllib.request.urlopen`` caches its opener, and with it the proxy settings, at its first use.)
    """
    return urllib.request.build_opener().open(request, timeout=timeout)


def _transfer(url: str, part: Path, size: int | None, resume: bool, timeout: float, progress: bool,
              callback: ProgressCallback | None, headers: dict[str, str] | None) -> None:
    """One attempt: append to (or restart) ``part`` until the server's body ends; raise :class:`_Cut` if short."""
    offset = part.stat().st_size if (resume and part.exists()) else 0
    if size is not None and offset > size:  # a stale partial file from another version: start over
        offset = 0
    if size is not None and offset == size:
        return
    try:
        resp = _open(url, offset, timeout, headers)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # range not satisfiable: our partial file is unusable
            part.unlink(missing_ok=True)
            raise _Cut(f"server refused to resume at byte {offset}; restarting") from exc
        raise
    with resp:
        status = getattr(resp, "status", 200)
        if offset and status != 206:
            log.info("server ignored the Range request for %s; restarting from byte 0", url)
            offset = 0
        elif offset:
            content_range = resp.headers.get("Content-Range", "")
            start = content_range.split(" ")[-1].split("-")[0] if content_range else ""
            if start != str(offset):
                log.info("server answered Range with %r; restarting from byte 0", content_range)
                resp.close()
                part.unlink(missing_ok=True)
                raise _Cut(f"unexpected Content-Range {content_range!r}")
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else size
        if size is not None and total is not None and total != size:
            raise _size_error(url, total, size, deleted=False)
        needed = (total - offset) if total is not None else None
        if needed is not None and shutil.disk_usage(part.parent).free < needed:
            raise _disk_full(part.parent, needed)
        bar = _progress_bar(total, offset, part.name, progress)
        done = offset
        try:
            with open(part, "ab" if offset else "wb") as fh:
                while block := resp.read(CHUNK_BYTES):
                    try:
                        fh.write(block)
                    except OSError as exc:
                        if exc.errno == errno.ENOSPC:
                            raise _disk_full(part.parent, (total - done) if total else None, exc) from exc
                        raise
                    done += len(block)
                    bar.update(len(block))
                    if callback is not None:
                        callback(done, total)
        finally:
            bar.close()
        if total is not None and done < total:
            raise _Cut(f"connection closed after {done} of {total} bytes")


def _progress_bar(total: int | None, initial: int, name: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                disable=not progress or not sys.stderr.isatty(), leave=False)


def download(url: str, dest: str | os.PathLike[str], sha256: str | None = None, size: int | None = None,
             progress: bool = True, resume: bool = True, timeout: float = 30, retries: int = 3,
             callback: ProgressCallback | None = None, headers: dict[str, str] | None = None) -> Path:
    """Download ``url`` to ``dest`` and verify it; return ``dest``.

    The data go to ``dest.part`` first and are renamed only once complete and verified. A partial file left by an
    earlier cut is resumed with an HTTP ``Range`` request (servers that ignore ``Range`` are handled by starting
    again). An existing ``dest`` that matches ``sha256`` (or, without ``sha256``, ``size``) is returned without any
    network access; one that does not is downloaded again. Concurrent callers
    for the same ``dest`` wait for each other (a ``dest.lock`` file lock).

    Args:
        url: http(s) (or file) URL; proxies come from the environment (``HTTPS_PROXY``).
        dest: target file path; its folder is created.
        sha256: expected hex digest; a mismatch deletes the file and raises :class:`ChecksumError`.
        size: expected size in bytes; checked against the server's length and the final file.
        progress: show a tqdm bar on a terminal (never when stderr is not a TTY).
        resume: reuse ``dest.part`` from an interrupted download.
        timeout: socket timeout in seconds for connecting and for each read.
        retries: further attempts after a cut or a transient error (connection reset, timeout, HTTP 5xx/429).
        callback: optional ``callback(bytes_done, total_bytes_or_None)`` (for GUIs).
        headers: extra HTTP request headers.

    Raises:
        DownloadError: offline, server gone, HTTP error, or disk full (the message says how much room is needed).
        ChecksumError: wrong size or sha256 (the downloaded file is deleted).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with FileLock(str(dest) + ".lock"):
        if dest.exists():
            if sha256 is None or sha256_file(dest).lower() == sha256.lower():
                if size is None or dest.stat().st_size == size:
                    log.debug("%s already present and verified", dest)
                    return dest
            log.info("%s exists but does not match; downloading again", dest)
            dest.unlink()
        if not resume:
            part.unlink(missing_ok=True)
        last: BaseException | None = None
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(RETRY_BACKOFF_S * attempt)
                log.info("retrying %s (attempt %d of %d): %s", url, attempt + 1, retries + 1, last)
            try:
                _transfer(url, part, size, resume, timeout, progress, callback, headers)
                break
            except _Cut as exc:
                last = exc
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRYABLE_STATUS:
                    raise DownloadError(
                        f"could not download {url}: HTTP {exc.code} {exc.reason}",
                        hint="check the URL (the file may have moved), or fetch the file elsewhere and "
                             "`import` the local copy",
                    ) from exc
                last = exc
            except (TimeoutError, urllib.error.URLError, http.client.HTTPException, ConnectionError) as exc:
                last = exc
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise _disk_full(dest.parent, size, exc) from exc
                raise
        else:
            reason = getattr(last, "reason", last)
            raise _offline_error(url, f"{reason} (after {retries + 1} attempts)") from last
        got = part.stat().st_size
        if size is not None and got != size:
            part.unlink(missing_ok=True)
            raise _size_error(url, got, size, deleted=True)
        if sha256 is not None:
            verify_sha256(part, sha256, delete=True, what=url)
        os.replace(part, dest)
    return dest
