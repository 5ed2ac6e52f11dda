"""Exception hierarchy. Every error names the offending value and, where one exists, the fix (``hint``)."""

from __future__ import annotations


class OrganSegBenchError(Exception):
    """Base class for all errors raised on purpose by OrganSegBench.

    Args:
        message: what went wrong, naming the bad value.
        hint: what the user can do about it (an option, a command, a file to provide).
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n  fix: {hint}" if hint else message)


class InputFileError(OrganSegBenchError):
    """A file is missing, unreadable, truncated or of an unsupported format."""


class GeometryMismatchError(OrganSegBenchError):
    """Two images that must share a grid (or a physical space) do not."""


class AmbiguousInputError(OrganSegBenchError):
    """An input could mean several things (for example a DICOM folder holding several series)."""


class ChecksumError(OrganSegBenchError):
    """A downloaded or imported file does not have the expected sha256."""


class DownloadError(OrganSegBenchError):
    """A download failed (offline, server gone, disk full)."""


class UnsafeArchiveError(OrganSegBenchError):
    """An archive member would be written outside its destination folder."""


class UnknownNameError(OrganSegBenchError):
    """A name (model, structure, vocabulary, metric, fusion method) is not known; the message lists close matches."""


class EmptyMaskError(OrganSegBenchError):
    """An operation needs a non-empty mask and got an empty one."""


class ConfigError(OrganSegBenchError):
    """A configuration or cohort file is malformed (for example a misspelt column)."""


class DependencyError(OrganSegBenchError):
    """An optional dependency (torch, a model package, slicer-core) is not installed."""


def close_matches(name: str, choices: list[str] | tuple[str, ...], n: int = 5) -> list[str]:
    """Return up to ``n`` entries of ``choices`` that look like ``name`` (case-insensitive)."""
    import difflib

    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    sub = [c for c in choices if name.lower() in c.lower() and c not in [lowered[h] for h in hits]]
    return [lowered[h] for h in hits] + sub[: max(0, n - len(hits))]


def unknown_name(kind: str, name: str, choices: list[str] | tuple[str, ...]) -> UnknownNameError:
    """Build an :class:`UnknownNameError` that lists close matches (or all choices when there are few)."""
    matches = close_matches(name, list(choices))
    if matches:
        hint = f"did you mean: {', '.join(matches)}?"
    elif len(choices) <= 20:
        hint = f"known {kind}s: {', '.join(sorted(choices))}"
    else:
        hint = f"{len(choices)} {kind}s are known: {', '.join(sorted(choices)[:10])}, …"
    return UnknownNameError(f"unknown {kind} {name!r}", hint)
