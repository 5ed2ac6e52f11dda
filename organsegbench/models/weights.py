"""Weights catalog, cache, download and import with sha256 verification.

The catalog (``organsegbench/resources/weights.json``) lists each checkpoint's URL(s), size (bytes), sha256 and
licence. Checkpoints live under ``$ORGANSEGBENCH_CACHE/weights/<name>/<file>``; a sidecar ``<file>.sha256.json``
records the digest, size, mtime and whether the file was **verified** against a published hash.

Entries whose sha256 is unknown (``null`` in the catalog) are never silently treated as verified: download and
import refuse them unless ``allow_unverified=True`` (``--allow-unverified`` on the command line); the computed hash
is then recorded with ``verified: false`` and every result made with it says so in its provenance.

Import recognises files by their sha256 against every catalog entry, so offering (for example) SAM2.1-tiny as
MedSAM2 fails with a message that names the file as SAM2.1-tiny.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from organsegbench.config import weights_dir
from organsegbench.errors import ChecksumError, InputFileError, OrganSegBenchError, unknown_name

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".sha256.json"


@dataclass(frozen=True)
class WeightsEntry:
    """One catalog entry (see ``weights.json``)."""

    name: str
    model: str
    format: str
    file: str
    urls: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None
    licence: str = "unknown"
    config: str | None = None
    config_overrides: tuple[str, ...] = ()
    manual_url: str | None = None
    hash_source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_archive(self) -> bool:
        """True for zipped model folders (nnU-Net task folders of TotalSegmentator and MOOSE)."""
        return self.format == "nnunet_zip"

    @property
    def hash_known(self) -> bool:
        """True when the catalog has a published sha256 for this checkpoint."""
        return bool(self.sha256)


@lru_cache(maxsize=1)
def catalog() -> dict[str, WeightsEntry]:
    """All catalog entries by name."""
    text = resources.files("organsegbench.resources").joinpath("weights.json").read_text()
    data = json.loads(text)["weights"]
    known = set(WeightsEntry.__dataclass_fields__)
    out = {}
    for name, e in data.items():
        kwargs = {k: v for k, v in e.items() if k in known}
        kwargs["urls"] = tuple(kwargs.get("urls") or ())
        kwargs["config_overrides"] = tuple(kwargs.get("config_overrides") or ())
        out[name] = WeightsEntry(name=name, extra={k: v for k, v in e.items() if k not in known}, **kwargs)
    return out


def entry(name: str) -> WeightsEntry:
    """The catalog entry ``name``; :class:`UnknownNameError` listing close matches otherwise."""
    cat = catalog()
    if name not in cat:
        raise unknown_name("weights", name, sorted(cat))
    return cat[name]


def known_hashes() -> dict[str, str]:
    """sha256 -> catalog name for every entry with a published hash."""
    return {e.sha256.lower(): e.name for e in catalog().values() if e.sha256}


def identify(sha256: str) -> str | None:
    """Catalog name of the checkpoint with this sha256, or ``None``."""
    return known_hashes().get(sha256.lower())


# ----------------------------------------------------------------------------------------------- cache
def cache_path(name: str, root: Path | None = None) -> Path:
    """Where checkpoint ``name`` lives in the cache (file, or folder for archives)."""
    e = entry(name)
    return (root or weights_dir()) / name / e.file


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached in its sidecar (recomputed when size or mtime changed)."""
    from organsegbench.download import sha256_file

    path = Path(path)
    st = path.stat()
    side = _sidecar(path)
    if side.is_file():
        try:
            rec = json.loads(side.read_text())
            if rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns and rec.get("sha256"):
                return rec["sha256"]
        except (json.JSONDecodeError, OSError):
            pass
    digest = sha256_file(path)
    _write_record(path, digest, verified=None)
    return digest


def _write_record(path: Path, digest: str, verified: bool | None, source: str | None = None) -> dict:
    st = path.stat()
    side = _sidecar(path)
    old = {}
    if side.is_file():
        try:
            old = json.loads(side.read_text())
        except (json.JSONDecodeError, OSError):
            old = {}
    rec = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
           "verified": old.get("verified") if verified is None and old.get("sha256") == digest else verified,
           "source": source or old.get("source")}
    try:
        side.write_text(json.dumps(rec, indent=1))
    except OSError as exc:  # read-only weights folders still work, the digest is just not cached
        log.debug("cannot write %s: %s", side, exc)
    return rec


def record(name: str, root: Path | None = None) -> dict[str, Any] | None:
    """The cache record of ``name`` (sha256, size, verified, source) or ``None`` when absent."""
    path = cache_path(name, root)
    if not path.exists():
        return None
    if path.is_dir():
        side = _sidecar(path)
        return json.loads(side.read_text()) if side.is_file() else {"sha256": None, "verified": False}
    digest = file_sha256(path)
    rec = json.loads(_sidecar(path).read_text()) if _sidecar(path).is_file() else {}
    e = entry(name)
    rec["sha256"] = digest
    rec["verified"] = bool(e.sha256 and digest == e.sha256.lower())
    return rec


def is_present(name: str, root: Path | None = None) -> bool:
    """True when checkpoint ``name`` is in the cache."""
    return cache_path(name, root).exists()


def how_to_get(name: str) -> str:
    """The commands that put ``name`` into the cache."""
    e = entry(name)
    if e.urls:
        flag = "" if e.hash_known else " --allow-unverified"
        return (f"run `organsegbench weights download {name}{flag}`, or if this machine is offline copy the file "
                f"from {e.urls[0]} and run `organsegbench weights import {name} FILE`")
    where = f" (get it from {e.manual_url})" if e.manual_url else ""
    return f"download {e.file} by hand{where} and run `organsegbench weights import {name} FILE --allow-unverified`"


def require(name: str, root: Path | None = None) -> Path:
    """Path of cached checkpoint ``name``; :class:`OrganSegBenchError` saying how to get it when absent."""
    path = cache_path(name, root)
    if not path.exists():
        raise OrganSegBenchError(f"weights {name!r} are not in the cache ({path})", how_to_get(name))
    return path


# ----------------------------------------------------------------------------------------------- download
def _refuse_unverified(e: WeightsEntry, action: str) -> None:
    raise ChecksumError(
        f"no published sha256 is known for weights {e.name!r}, so a {action} cannot be verified",
        "repeat with --allow-unverified (allow_unverified=True) to accept it; its hash is then recorded as "
        "unverified and every result made with it says so",
    )


def download_weights(name: str, root: Path | None = None, progress: bool = True,
                     allow_unverified: bool = False, url: str | None = None) -> Path:
    """Download checkpoint ``name`` into the cache (resumable, size + sha256 checked) and return its path.

    Archives (nnU-Net task folders) are unpacked with :func:`organsegbench.download.safe_extract`.
    ``url`` overrides the catalog URL (mirrors, tests).
    """
    from organsegbench.download import download

    e = entry(name)
    urls = [url] if url else list(e.urls)
    if not urls:
        raise OrganSegBenchError(f"weights {name!r} have no direct download URL", how_to_get(name))
    if not e.hash_known and not allow_unverified:
        _refuse_unverified(e, "download")
    dest = cache_path(name, root)
    if dest.exists():
        return dest
    target = dest.with_name(dest.name + ".zip") if e.is_archive else dest
    last: Exception | None = None
    for u in urls:
        try:
            download(u, target, sha256=e.sha256, size=e.size, progress=progress)
            break
        except OrganSegBenchError as exc:
            last = exc
            log.warning("download of %s from %s failed: %s", name, u, exc.message)
    else:
        assert last is not None
        raise last
    return _install(e, target, dest, source=urls[0], verified=e.hash_known)


def _install(e: WeightsEntry, target: Path, dest: Path, source: str, verified: bool) -> Path:
    """Record the hash (and unpack archives) of a file placed at ``target``."""
    digest = file_sha256(target)
    if not e.is_archive:
        _write_record(target, digest, verified=verified, source=source)
        return target
    from organsegbench.download import safe_extract

    tmp = dest.with_name(dest.name + ".extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    safe_extract(target, tmp)
    inner = tmp / e.file if (tmp / e.file).is_dir() else tmp
    inner.rename(dest)
    shutil.rmtree(tmp, ignore_errors=True)
    side = _sidecar(dest)
    side.write_text(json.dumps({"sha256": digest, "verified": verified, "source": source, "archive": target.name}))
    target.unlink(missing_ok=True)
    _sidecar(target).unlink(missing_ok=True)
    return dest


# ----------------------------------------------------------------------------------------------- import
def import_weights(name: str, file: str | Path, root: Path | None = None,
                   allow_unverified: bool = False) -> Path:
    """Copy a local checkpoint into the cache as ``name`` after checking its sha256.

    Refuses a file whose hash belongs to another catalog entry (naming it), a file whose hash differs from the
    published one, and—unless ``allow_unverified``—any file for an entry without a published hash.
    """
    e = entry(name)
    src = Path(file).expanduser()
    if src.is_dir() and e.is_archive:
        return _import_folder(e, src, root, allow_unverified)
    if not src.is_file():
        raise InputFileError(f"weights file {src} does not exist or is not a file",
                             "give the path of the downloaded checkpoint (.pth/.pt/.zip)")
    from organsegbench.download import sha256_file

    digest = sha256_file(src)
    other = identify(digest)
    if other and other != name:
        raise ChecksumError(
            f"{src.name} is the {other!r} checkpoint (sha256 {digest[:12]}…), not {name!r}",
            f"import it as {other} (`organsegbench weights import {other} {src}`), or give the {name} file",
        )
    if e.hash_known and digest != e.sha256.lower():
        raise ChecksumError(
            f"{src.name} has sha256 {digest}, but {name} is published with {e.sha256} (and the file matches no "
            "other known checkpoint)",
            "the file is damaged, truncated or a different model; download it again from "
            + (e.urls[0] if e.urls else e.manual_url or "its official source"),
        )
    if e.size is not None and src.stat().st_size != e.size and not e.hash_known:
        raise ChecksumError(f"{src.name} is {src.stat().st_size} bytes; {name} is {e.size} bytes")
    if not e.hash_known and not allow_unverified:
        _refuse_unverified(e, "file import")
    dest = cache_path(name, root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if e.is_archive:
        target = dest.with_name(dest.name + ".zip")
        shutil.copyfile(src, target)
        if dest.exists():
            shutil.rmtree(dest)
        return _install(e, target, dest, source=f"import:{src}", verified=e.hash_known)
    tmp = dest.with_name(dest.name + ".importing")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)
    _write_record(dest, digest, verified=e.hash_known, source=f"import:{src}")
    return dest


def _import_folder(e: WeightsEntry, src: Path, root: Path | None, allow_unverified: bool) -> Path:
    """Copy an unpacked model folder (for example from ~/.totalsegmentator); never verifiable by hash."""
    if not allow_unverified:
        raise ChecksumError(f"{src} is an unpacked folder, so it cannot be checked against a published sha256",
                            "repeat with --allow-unverified to accept it (recorded as unverified), or import the "
                            "release .zip instead")
    if not any(src.rglob("plans.json")):
        raise InputFileError(f"{src} holds no nnU-Net plans.json, so it is not a {e.name} model folder",
                             f"give the folder named {e.file}")
    dest = cache_path(e.name, root)
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest)
    _sidecar(dest).write_text(json.dumps({"sha256": None, "verified": False, "source": f"import-folder:{src}"}))
    return dest


def weights_provenance(name: str | None, path: Path | None) -> dict[str, Any]:
    """Provenance fields for a checkpoint: name, file, sha256, verified flag."""
    if path is None:
        return {"weights": name, "weights_sha256": None, "weights_verified": False}
    path = Path(path)
    if path.is_dir():
        side = _sidecar(path)
        rec = json.loads(side.read_text()) if side.is_file() else {}
        return {"weights": name, "weights_file": path.name, "weights_sha256": rec.get("sha256"),
                "weights_verified": bool(rec.get("verified"))}
    digest = file_sha256(path)
    verified = bool(name and name in catalog() and catalog()[name].sha256 == digest)
    return {"weights": name or identify(digest), "weights_file": path.name, "weights_sha256": digest,
            "weights_verified": verified}
