"""Safe extraction of ``.tar.gz``/``.tgz``/``.tar``/``.zip`` archives.

Every selected member is checked before anything is written: a member whose path is absolute, contains ``..``
that climbs out, or is a link (symbolic or hard) whose target resolves outside the destination makes the whole
extraction fail with :class:`~organsegbench.errors.UnsafeArchiveError` naming that member; device files and FIFOs are
refused too. Tar members are then extracted with Python's ``data`` filter (PEP 706) where available, as a second
line of defence.
"""

from __future__ import annotations

import os
import posixpath
import stat
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from organsegbench.errors import InputFileError, UnsafeArchiveError

__all__ = ["list_members", "safe_extract"]


def _prefixes(members: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if members is None:
        return None
    items = (members,) if isinstance(members, str) else tuple(members)
    return tuple(m[2:] if m.startswith("./") else m for m in items)


def _selected(name: str, prefixes: tuple[str, ...] | None) -> bool:
    if prefixes is None:
        return True
    clean = name[2:] if name.startswith("./") else name
    return any(clean.rstrip("/") == p.rstrip("/") or clean.startswith(p.rstrip("/") + "/") for p in prefixes)


def _inside(root: Path, target: Path) -> bool:
    try:
        target.relative_to(root)
        return True
    except ValueError:
        return False


def _refuse(archive: Path, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"archive {archive.name} member {member!r} {why}; nothing was extracted",
        hint="do not use this archive: it may be malicious or damaged; download it again from a trusted source",
    )


def _check_path(archive: Path, root: Path, name: str) -> Path:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or os.path.isabs(name):
        raise _refuse(archive, name, "has an absolute path")
    target = (root / name).resolve()
    if not _inside(root, target):
        raise _refuse(archive, name, f"would be written outside {root} (to {target})")
    return target


def _check_tar_member(archive: Path, root: Path, m: tarfile.TarInfo) -> None:
    _check_path(archive, root, m.name)
    if m.issym():
        if m.linkname.startswith("/") or os.path.isabs(m.linkname):
            raise _refuse(archive, m.name, f"is a symlink to the absolute path {m.linkname!r}")
        link_dir = posixpath.dirname(m.name)
        if not _inside(root, (root / link_dir / m.linkname).resolve()):
            raise _refuse(archive, m.name, f"is a symlink pointing outside the destination ({m.linkname!r})")
    elif m.islnk():
        if m.linkname.startswith("/") or not _inside(root, (root / m.linkname).resolve()):
            raise _refuse(archive, m.name, f"is a hard link pointing outside the destination ({m.linkname!r})")
    elif m.ischr() or m.isblk() or m.isfifo():
        raise _refuse(archive, m.name, "is a device file or FIFO")


def _check_zip_member(archive: Path, root: Path, info: zipfile.ZipInfo, zf: zipfile.ZipFile) -> None:
    _check_path(archive, root, info.filename)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):  # zipfile writes links as plain files, but refuse ones that point out anyway
        target = zf.read(info).decode("utf-8", "replace")
        if target.startswith("/") or not _inside(root, (root / posixpath.dirname(info.filename) / target).resolve()):
            raise _refuse(archive, info.filename, f"is a symlink pointing outside the destination ({target!r})")


def _kind(archive: Path) -> str:
    name = archive.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")):
        return "tar"
    raise InputFileError(f"unsupported archive type: {archive.name}",
                         hint="use a .tar.gz, .tgz, .tar or .zip archive")


def list_members(archive: str | os.PathLike[str], members: str | Iterable[str] | None = None) -> list[str]:
    """Names of the (selected) members of ``archive``, in archive order."""
    archive = Path(archive)
    prefixes = _prefixes(members)
    if _kind(archive) == "zip":
        with zipfile.ZipFile(archive) as zf:
            return [n for n in zf.namelist() if _selected(n, prefixes)]
    with tarfile.open(archive) as tf:
        return [m.name for m in tf.getmembers() if _selected(m.name, prefixes)]


def safe_extract(archive_path: str | os.PathLike[str], dest: str | os.PathLike[str],
                 members: str | Iterable[str] | None = None, progress: bool = False,
                 callback: Callable[[int, int | None], None] | None = None) -> list[Path]:
    """Extract ``archive_path`` into ``dest`` after checking every selected member; return the written files.

    Args:
        archive_path: a ``.tar.gz``/``.tgz``/``.tar``/``.zip`` file.
        dest: destination folder (created).
        members: ``None`` for all members, or a prefix (or several) such as ``"pkg-1.0/tests/reference_files/"``;
            only members equal to or under a prefix are checked and extracted.
        progress: show a tqdm bar (bytes) on a terminal.
        callback: optional ``callback(bytes_done, total_bytes)``.

    Raises:
        UnsafeArchiveError: a selected member would land outside ``dest`` (``../``, absolute path, link out) or is a
            device file; nothing is extracted.
        InputFileError: the archive is unreadable, truncated, or no member matches ``members``.
    """
    archive = Path(archive_path)
    root = Path(dest).resolve()
    prefixes = _prefixes(members)
    kind = _kind(archive)
    try:
        if kind == "zip":
            return _extract_zip(archive, root, prefixes, progress, callback)
        return _extract_tar(archive, root, prefixes, progress, callback)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise InputFileError(f"cannot read archive {archive}: {exc}",
                             hint="the file is damaged or truncated; download it again") from exc


def _none_selected(archive: Path, prefixes: tuple[str, ...] | None) -> InputFileError:
    return InputFileError(f"archive {archive.name} has no member under {', '.join(prefixes or ())}",
                          hint="check the member prefix (list the archive with `tar tzf`)")


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                disable=not progress or not sys.stderr.isatty(), leave=False)


def _extract_tar(archive: Path, root: Path, prefixes: tuple[str, ...] | None, progress: bool,
                 callback: Callable[[int, int | None], None] | None) -> list[Path]:
    with tarfile.open(archive) as tf:
        chosen = [m for m in tf.getmembers() if _selected(m.name, prefixes)]
        if not chosen:
            raise _none_selected(archive, prefixes)
        for m in chosen:  # validate everything before writing anything
            _check_tar_member(archive, root, m)
        root.mkdir(parents=True, exist_ok=True)
        total = sum(m.size for m in chosen if m.isfile())
        done = 0
        written: list[Path] = []
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        with _bar(total, f"extracting {archive.name}", progress) as bar:
            for m in chosen:
                tf.extract(m, root, **kwargs)
                if m.isfile():
                    written.append(root / m.name)
                    done += m.size
                    bar.update(m.size)
                    if callback is not None:
                        callback(done, total)
    return written


def _extract_zip(archive: Path, root: Path, prefixes: tuple[str, ...] | None, progress: bool,
                 callback: Callable[[int, int | None], None] | None) -> list[Path]:
    with zipfile.ZipFile(archive) as zf:
        chosen = [i for i in zf.infolist() if _selected(i.filename, prefixes)]
        if not chosen:
            raise _none_selected(archive, prefixes)
        for info in chosen:
            _check_zip_member(archive, root, info, zf)
        root.mkdir(parents=True, exist_ok=True)
        total = sum(i.file_size for i in chosen)
        done = 0
        written: list[Path] = []
        with _bar(total, f"extracting {archive.name}", progress) as bar:
            for info in chosen:
                out = Path(zf.extract(info, root))
                if not info.is_dir():
                    written.append(out)
                    done += info.file_size
                    bar.update(info.file_size)
                    if callback is not None:
                        callback(done, total)
    return written
