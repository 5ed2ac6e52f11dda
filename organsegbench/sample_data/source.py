"""Obtaining the verified TotalSegmentator source distribution from the package registry.

First route: the registry's simple index (PEP 691 JSON, or PEP 503 HTML from indexes that serve only that) gives
the sdist's URL, which :func:`organsegbench.download.download` fetches with resume, progress, size and sha256
checks. Second route, when the index cannot be reached or does not list the file: ``pip download`` with the
user's pip configuration. Either way the file is verified against the pinned size and sha256 before use.

The index is, in order: the ``index_url`` argument, ``$ORGANSEGBENCH_INDEX_URL``, ``$PIP_INDEX_URL``, pip's
configured ``index-url``, then ``https://pypi.org/simple/``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from organsegbench import download as dl
from organsegbench.errors import ChecksumError, DownloadError

log = logging.getLogger(__name__)

DEFAULT_INDEX = "https://pypi.org/simple/"
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"


@dataclass(frozen=True)
class Distribution:
    """A pinned registry file: ``package==version`` with its file name, size (bytes) and sha256."""

    package: str
    version: str
    filename: str
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


def configured_index(index_url: str | None = None) -> str:
    """The simple-index URL to use (see the module docstring for the order); always ends with ``/``."""
    url = index_url or os.environ.get("ORGANSEGBENCH_INDEX_URL") or os.environ.get("PIP_INDEX_URL")
    if not url:
        url = _pip_config_index() or DEFAULT_INDEX
    return url if url.endswith("/") else url + "/"


def _pip_config_index() -> str | None:
    """``index-url`` from pip's own configuration (``pip config list``), if one is set."""
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             timeout=60, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("global.index-url", "download.index-url", ":env:.index-url"):
            return value.strip().strip("'\"") or None
    return None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def find_file(dist: Distribution, index: str, timeout: float = 30) -> tuple[str, str | None, int | None]:
    """Look ``dist.filename`` up in the simple index; return ``(url, sha256 listed, size listed)``.

    Raises:
        DownloadError: the index cannot be reached, answers with an error, or does not list the file.
    """
    project = urllib.parse.urljoin(index, f"{dist.package.lower()}/")
    req = urllib.request.Request(project, headers={"Accept": JSON_ACCEPT, "User-Agent": dl.USER_AGENT})
    try:
        with dl.urlopen(req, timeout=timeout) as resp:
            ctype = resp.headers.get("Content-Type", "")
            body = resp.read()
            base = resp.geturl()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
        raise DownloadError(f"cannot read the package index {project}: {reason}",
                            hint="check the network or PIP_INDEX_URL") from exc
    if "json" in ctype:
        for entry in json.loads(body).get("files", []):
            if entry.get("filename") == dist.filename:
                return (urllib.parse.urljoin(base, entry["url"]), entry.get("hashes", {}).get("sha256"),
                        entry.get("size"))
    else:
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        for href in parser.hrefs:
            url, _, fragment = href.partition("#")
            if urllib.parse.unquote(url.rsplit("/", 1)[-1]) == dist.filename:
                listed = fragment[len("sha256="):] if fragment.startswith("sha256=") else None
                return urllib.parse.urljoin(base, url), listed, None
    raise DownloadError(f"the package index {project} does not list {dist.filename}",
                        hint=f"use an index that mirrors {dist.requirement} (PIP_INDEX_URL)")


def pip_download(dist: Distribution, folder: Path, timeout: float = 600) -> Path:
    """Fetch the sdist with ``pip download --no-deps --no-binary :all:`` into ``folder``; return its path."""
    with tempfile.TemporaryDirectory(dir=folder, prefix=".pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               dist.requirement, "-d", tmp]
        log.info("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise DownloadError(f"`pip download {dist.requirement}` could not run: {exc}",
                                hint="install pip in this environment or fix the network") from exc
        got = Path(tmp) / dist.filename
        if proc.returncode != 0 or not got.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise DownloadError(f"`pip download {dist.requirement}` failed: {' | '.join(tail)}",
                                hint=f"check the network / pip configuration, or download {dist.filename} "
                                     f"yourself and put it in {folder}")
        target = folder / dist.filename
        shutil.move(str(got), target)
    return target


def obtain(dist: Distribution, folder: Path, index_url: str | None = None, progress: bool = True,
           callback: dl.ProgressCallback | None = None) -> Path:
    """Return a verified local copy of ``dist`` in ``folder``, downloading it when needed.

    An existing file with the right sha256 is used as is. A wrong file (any route) is deleted and raises
    :class:`ChecksumError`; there is no silent fallback after a checksum failure.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / dist.filename
    if target.exists():
        if target.stat().st_size == dist.size and dl.sha256_file(target) == dist.sha256:
            return target
        log.info("%s does not match the pinned sha256; fetching it again", target)
        target.unlink()
    index = configured_index(index_url)
    try:
        url, listed_sha, listed_size = find_file(dist, index)
    except DownloadError as exc:
        log.warning("%s; falling back to pip download", exc.message)
        try:
            path = pip_download(dist, folder)
        except DownloadError as pip_exc:
            raise DownloadError(
                f"cannot obtain {dist.filename}: {exc.message}; and {pip_exc.message}",
                hint=f"connect to the internet (set HTTPS_PROXY behind a proxy, or PIP_INDEX_URL for a mirror), or "
                     f"copy a verified {dist.filename} ({dist.size} bytes, sha256 {dist.sha256}) into {folder} "
                     f"and run again",
            ) from pip_exc
    else:
        if listed_sha and listed_sha.lower() != dist.sha256:
            raise ChecksumError(
                f"the index {index} lists {dist.filename} with sha256 {listed_sha}, expected {dist.sha256}",
                hint="this index serves a different file under the same name; use the official index "
                     "(unset PIP_INDEX_URL) or a faithful mirror",
            )
        if listed_size is not None and listed_size != dist.size:
            log.warning("index lists %s as %s bytes, expected %s", dist.filename, listed_size, dist.size)
        path = dl.download(url, target, sha256=dist.sha256, size=dist.size, progress=progress, callback=callback)
    if path.stat().st_size != dist.size:
        size = path.stat().st_size
        path.unlink()
        raise ChecksumError(f"{dist.filename} is {size} bytes, expected {dist.size} bytes (the file was deleted)",
                            hint="download it again; the registry copy or the transfer is damaged")
    dl.verify_sha256(path, dist.sha256, delete=True, what=dist.filename)
    return path
