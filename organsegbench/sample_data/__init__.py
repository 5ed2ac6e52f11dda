"""Real sample data: the reference files of TotalSegmentator's own test suite, fetched from the package registry.

The PyPI source distribution ``totalsegmentator==2.18.0`` (38,049,988 bytes, pinned sha256) carries
``tests/reference_files/``: an abdominal CT with TotalSegmentator's normal and ``--fast`` outputs, a 20-slice
JPEG 2000 DICOM series with its segmentation, a chest CT angiography with heart/aorta masks and an MR case.
:func:`fetch` downloads and verifies the archive (kept in ``<cache>/downloads`` so a re-extraction never needs the
network), extracts only that folder, safely, into ``<cache>/sample_data/totalsegmentator-2.18.0/`` and writes a
marker, so a second call does nothing. The bundled manifest (``resources/sample_data.json``) describes each case:
file paths relative to that root, modality, geometry, the label vocabulary used, and the known traps.

Example::

    from organsegbench import sample_data
    data = sample_data.fetch()
    ct = data.path("abdomen_ct", "image")          # example_ct_sm.nii.gz
    normal = data.path("abdomen_ct", "seg_normal")  # TotalSegmentator normal ("total" labels)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from filelock import FileLock

from organsegbench.download import ProgressCallback
from organsegbench.errors import InputFileError, unknown_name
from organsegbench.sample_data.source import Distribution, obtain

log = logging.getLogger(__name__)

MARKER = ".organsegbench-complete.json"

__all__ = ["Case", "SampleData", "SampleFile", "TOTALSEG_SDIST", "fetch", "load_manifest", "sample_root"]


def load_manifest() -> dict[str, Any]:
    """The bundled manifest (``organsegbench/resources/sample_data.json``) as a dict."""
    text = resources.files("organsegbench").joinpath("resources", "sample_data.json").read_text("utf-8")
    return json.loads(text)


def _dist(manifest: dict[str, Any]) -> Distribution:
    src = manifest["source"]
    return Distribution(src["package"], src["version"], src["filename"], int(src["size"]), src["sha256"].lower())


#: the pinned source distribution the sample data come from
TOTALSEG_SDIST = _dist(load_manifest())


@dataclass(frozen=True)
class SampleFile:
    """One file (or folder) of a case.

    Attributes:
        role: its role in the case (``image``, ``seg_normal``, ``seg_fast``, ``series``, ``heart`` …).
        path: absolute path in the cache.
        kind: ``image``, ``labelmap``, ``mask`` (binary), ``mask_folder`` or ``dicom_series``.
        vocabulary: label vocabulary of a label map (``total``, ``total_mr`` …), else ``None``.
        info: every manifest field (geometry in ITK x,y,z order and mm, labels present, command used, …).
    """

    role: str
    path: Path
    kind: str
    vocabulary: str | None
    info: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Case:
    """A sample case: its files by role, modality, description and notes (the traps to know about)."""

    name: str
    modality: str
    description: str
    files: dict[str, SampleFile]
    notes: tuple[str, ...] = ()

    def path(self, role: str) -> Path:
        """Absolute path of the file with ``role`` (:class:`UnknownNameError` listing the roles otherwise)."""
        return self.file(role).path

    def file(self, role: str) -> SampleFile:
        """The :class:`SampleFile` with ``role``."""
        if role not in self.files:
            raise unknown_name(f"role of case {self.name!r}", role, list(self.files))
        return self.files[role]


class SampleData:
    """The extracted sample data: ``root`` folder, ``cases`` by name, and lookups by case and role."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self.cases: dict[str, Case] = {}
        for name, entry in manifest["cases"].items():
            files = {role: SampleFile(role, self.root / f["path"], f["kind"], f.get("vocabulary"), f)
                     for role, f in entry["files"].items()}
            self.cases[name] = Case(name, entry["modality"], entry["description"], files, tuple(entry["notes"]))

    def case(self, name: str) -> Case:
        """The case called ``name`` (:class:`UnknownNameError` with close matches otherwise)."""
        if name not in self.cases:
            raise unknown_name("sample case", name, list(self.cases))
        return self.cases[name]

    def path(self, case: str, role: str) -> Path:
        """Absolute path of ``role`` in ``case``, e.g. ``path("abdomen_ct", "seg_fast")``."""
        return self.case(case).path(role)

    def missing(self) -> list[Path]:
        """Manifest paths that do not exist under :attr:`root` (empty after a successful fetch)."""
        return [f.path for c in self.cases.values() for f in c.files.values() if not f.path.exists()]

    def __repr__(self) -> str:
        return f"SampleData(root={str(self.root)!r}, cases={list(self.cases)})"


def sample_root(cache: str | os.PathLike[str] | None = None) -> Path:
    """Extraction root ``<cache>/sample_data/totalsegmentator-2.18.0`` (``cache`` defaults to :func:`cache_dir`)."""
    return _base(cache) / "sample_data" / f"{TOTALSEG_SDIST.package}-{TOTALSEG_SDIST.version}"


def _base(cache: str | os.PathLike[str] | None) -> Path:
    if cache is not None:
        return Path(cache).expanduser()
    from organsegbench.config import cache_dir

    return cache_dir()


def _complete(root: Path, dist: Distribution, data: SampleData) -> bool:
    marker = root / MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("sha256") == dist.sha256 and not data.missing()


def fetch(cache: str | os.PathLike[str] | None = None, progress: bool = True, force: bool = False,
          index_url: str | None = None, callback: ProgressCallback | None = None) -> SampleData:
    """Make sure the sample data are in the cache and return them.

    Idempotent: when the completed marker (holding the archive's sha256) and every manifest file are present,
    nothing is downloaded, read or written. Otherwise the archive is obtained (the copy kept in
    ``<cache>/downloads`` if it verifies, else from the registry), verified, and ``tests/reference_files/`` is
    extracted to a staging folder that replaces the root only once complete. Concurrent calls wait for each other.

    Args:
        cache: cache root (default ``$ORGANSEGBENCH_CACHE`` or ``~/.cache/organsegbench``).
        progress: show progress bars on a terminal.
        force: extract again even when the marker says the data are complete.
        index_url: simple-index URL overriding ``$ORGANSEGBENCH_INDEX_URL`` / ``$PIP_INDEX_URL`` / pip's config.
        callback: optional ``callback(bytes_done, total_bytes)`` for the download.

    Raises:
        DownloadError: offline and no cached archive (the message says how to proceed).
        ChecksumError: the archive does not match the pinned size/sha256 (it is deleted; nothing is extracted).
        UnsafeArchiveError: a member would land outside the cache (nothing is extracted).
    """
    manifest = load_manifest()
    dist = _dist(manifest)
    base = _base(cache)
    root = sample_root(base)
    data = SampleData(root, manifest)
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if not force and _complete(root, dist, data):
            log.debug("sample data already complete in %s", root)
            return data
        t0 = time.perf_counter()
        archive = obtain(dist, base / "downloads", index_url=index_url, progress=progress, callback=callback)
        t1 = time.perf_counter()
        _extract(archive, root, dist, manifest, progress)
        log.info("sample data ready in %s (archive %.1f s, extraction %.1f s)", root, t1 - t0,
                 time.perf_counter() - t1)
    return data


def _extract(archive: Path, root: Path, dist: Distribution, manifest: dict[str, Any], progress: bool) -> None:
    from organsegbench.download import safe_extract

    prefix = manifest["source"]["archive_prefix"]
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=".extract-"))
    try:
        written = safe_extract(archive, staging, members=prefix, progress=progress)
        extracted = staging / prefix
        missing = SampleData(extracted, manifest).missing()
        if missing:
            raise InputFileError(
                f"{archive.name} lacks {len(missing)} file(s) the manifest describes, e.g. "
                f"{missing[0].relative_to(extracted)}",
                hint="the archive does not match organsegbench/resources/sample_data.json; reinstall organsegbench",
            )
        (extracted / MARKER).write_text(json.dumps({
            "archive": dist.filename, "sha256": dist.sha256, "files": len(written), "prefix": prefix,
            "extracted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }, indent=1), "utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(extracted, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
