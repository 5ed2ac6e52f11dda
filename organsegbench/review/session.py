"""The review session: one verdict (accept / reject / needs edit) and a note per structure x model.

The JSON file is the source of truth (versioned, resumable); a CSV beside it (same stem) has one row per
structure x model for spreadsheets. Both are written atomically, so killing Slicer mid-save never loses the
previous state, and :meth:`ReviewSession.open` resumes where the reviewer stopped.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from organsegbench.errors import ConfigError, InputFileError, unknown_name
from organsegbench.review.atomic import atomic_write_text

REVIEW_FILE_VERSION = 1
CSV_COLUMNS = ("structure", "model", "verdict", "note", "reviewer", "updated_utc")


class Verdict(StrEnum):
    """A reviewer's decision on one structure of one model."""

    UNREVIEWED = "unreviewed"
    ACCEPT = "accept"
    REJECT = "reject"
    NEEDS_EDIT = "needs_edit"

    @classmethod
    def parse(cls, value: str | Verdict) -> Verdict:
        """Accept ``"accept"``, ``"needs edit"``, ``"Needs-Edit"``, … ; unknown words list the choices."""
        if isinstance(value, Verdict):
            return value
        key = str(value).strip().lower().replace(" ", "_").replace("-", "_")
        for v in cls:
            if v.value == key:
                return v
        raise unknown_name("verdict", str(value), [v.value for v in cls])


@dataclass
class ReviewEntry:
    """The verdict and note of one structure in one model's segmentation."""

    structure: str
    model: str
    verdict: Verdict = Verdict.UNREVIEWED
    note: str = ""
    reviewer: str = ""
    updated_utc: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"structure": self.structure, "model": self.model, "verdict": self.verdict.value,
                "note": self.note, "reviewer": self.reviewer, "updated_utc": self.updated_utc}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass
class ReviewSession:
    """State of one review: which volume, which models and structures, the verdicts, the current structure.

    Attributes:
        volume: identifier of the reviewed volume (file path, series UID or node name).
        models: model names in display order (one row of views each).
        structures: canonical structure names in review order.
        present: structure -> models whose segmentation contains it (for the "how many models" column).
        current: index into ``structures`` of the structure on screen.
        path: review file (JSON); when set, every change is saved immediately.
    """

    volume: str
    models: list[str]
    structures: list[str]
    present: dict[str, list[str]] = field(default_factory=dict)
    entries: dict[tuple[str, str], ReviewEntry] = field(default_factory=dict)
    current: int = 0
    reviewer: str = ""
    created_utc: str = field(default_factory=_now)
    path: Path | None = None

    def __post_init__(self) -> None:
        if not self.models:
            raise ConfigError("a review needs at least one model", "load at least one segmentation to review")
        for s in self.structures:
            for m in self.models:
                self.entries.setdefault((s, m), ReviewEntry(s, m))
        self.current = min(max(0, self.current), max(0, len(self.structures) - 1))

    # ------------------------------------------------------------------------------------------------ verdicts
    def _check(self, structure: str, model: str) -> None:
        if structure not in self.structures:
            raise unknown_name("structure", structure, self.structures)
        if model not in self.models:
            raise unknown_name("model", model, self.models)

    def entry(self, structure: str, model: str) -> ReviewEntry:
        """The entry of ``structure`` in ``model`` (UnknownNameError for names not in the review)."""
        self._check(structure, model)
        return self.entries[(structure, model)]

    def set_verdict(self, structure: str, model: str, verdict: str | Verdict, note: str | None = None) -> ReviewEntry:
        """Record a verdict (and optionally replace the note); saved at once when the session has a path."""
        e = self.entry(structure, model)
        e.verdict = Verdict.parse(verdict)
        if note is not None:
            e.note = note
        e.reviewer = self.reviewer
        e.updated_utc = _now()
        self._autosave()
        return e

    def progress(self) -> tuple[int, int]:
        """``(reviewed, total)`` over structure x model pairs where the model has the structure (all pairs when
        presence is unknown)."""
        pairs = [(s, m) for s in self.structures for m in self.models if self.has(s, m)]
        done = sum(self.entries[p].verdict is not Verdict.UNREVIEWED for p in pairs)
        return done, len(pairs)

    def has(self, structure: str, model: str) -> bool:
        """Whether ``model``'s segmentation contains ``structure`` (True when presence was not recorded)."""
        return model in self.present[structure] if structure in self.present else True

    # ------------------------------------------------------------------------------------------------ navigation
    @property
    def current_structure(self) -> str | None:
        """The structure on screen (``None`` for a review without structures)."""
        return self.structures[self.current] if self.structures else None

    def go(self, step: int) -> str | None:
        """Move ``step`` structures forward (negative: back), clamped to the list; returns the new structure."""
        if self.structures:
            self.current = min(max(0, self.current + step), len(self.structures) - 1)
            self._autosave()
        return self.current_structure

    def go_to(self, structure: str) -> str:
        """Jump to ``structure``."""
        if structure not in self.structures:
            raise unknown_name("structure", structure, self.structures)
        self.current = self.structures.index(structure)
        self._autosave()
        return structure

    def next_unreviewed(self) -> str | None:
        """First structure at or after the current one (wrapping) with an unreviewed present pair."""
        n = len(self.structures)
        for off in range(n):
            s = self.structures[(self.current + off) % n]
            if any(self.has(s, m) and self.entries[(s, m)].verdict is Verdict.UNREVIEWED for m in self.models):
                return s
        return None

    # ------------------------------------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        return {
            "organsegbench_review": REVIEW_FILE_VERSION,
            "volume": self.volume,
            "models": list(self.models),
            "structures": list(self.structures),
            "present": {k: list(v) for k, v in self.present.items()},
            "current": self.current,
            "reviewer": self.reviewer,
            "created_utc": self.created_utc,
            "saved_utc": _now(),
            "entries": [e.to_dict() for e in self.entries.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "review data") -> ReviewSession:
        """Rebuild a session; ConfigError naming ``source`` and the problem when the content is not a review."""
        version = data.get("organsegbench_review") if isinstance(data, dict) else None
        if version is None:
            raise ConfigError(f"{source} is not an OrganSegBench review file (no 'organsegbench_review' key)",
                              "choose a review file saved by the Segmentation Review module, or a new file name")
        if version > REVIEW_FILE_VERSION:
            raise ConfigError(f"{source} has review format {version}; this version reads up to {REVIEW_FILE_VERSION}",
                              "update OrganSegBench")
        try:
            session = cls(volume=data["volume"], models=list(data["models"]), structures=list(data["structures"]),
                          present={k: list(v) for k, v in data.get("present", {}).items()},
                          current=int(data.get("current", 0)), reviewer=data.get("reviewer", ""),
                          created_utc=data.get("created_utc", _now()))
            for e in data.get("entries", []):
                key = (e["structure"], e["model"])
                session.entries[key] = ReviewEntry(e["structure"], e["model"], Verdict.parse(e["verdict"]),
                                                   e.get("note", ""), e.get("reviewer", ""), e.get("updated_utc", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source} is malformed: {exc!r}", "restore the file from a backup or start a new review") from exc
        return session

    def to_csv(self) -> str:
        """One row per structure x model (columns :data:`CSV_COLUMNS`), in review order."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        for s in self.structures:
            for m in self.models:
                w.writerow(self.entries[(s, m)].to_dict())
        return buf.getvalue()

    def save(self, path: str | Path | None = None) -> Path:
        """Write the JSON (and the CSV beside it) atomically; remembers ``path`` for autosave."""
        if path is not None:
            self.path = Path(path)
        if self.path is None:
            raise ConfigError("no review file chosen", "choose where to save the review (a .json file)")
        atomic_write_text(self.path, json.dumps(self.to_dict(), indent=1, ensure_ascii=False))
        atomic_write_text(self.path.with_suffix(".csv"), self.to_csv())
        return self.path

    def _autosave(self) -> None:
        if self.path is not None:
            self.save()

    @classmethod
    def load(cls, path: str | Path) -> ReviewSession:
        """Read a review file (InputFileError when missing or not JSON, naming the file)."""
        p = Path(path)
        if not p.is_file():
            raise InputFileError(f"review file {p} does not exist", "choose an existing review file or a new name")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(f"review file {p} is not valid JSON ({exc})",
                                 "restore it from a backup or start a new review file") from exc
        session = cls.from_dict(data, source=str(p))
        session.path = p
        return session

    @classmethod
    def open(cls, path: str | Path, volume: str, models: list[str], structures: list[str],
             present: dict[str, list[str]] | None = None, reviewer: str = "") -> ReviewSession:
        """Resume the review in ``path`` when it exists (adding new models/structures, keeping verdicts and the
        position), else start a new one there. A file about another volume is an error, not silently reused."""
        p = Path(path)
        if p.exists():
            old = cls.load(p)
            if old.volume != volume:
                raise ConfigError(f"review file {p} belongs to volume {old.volume!r}, not {volume!r}",
                                  "choose another review file name for this volume")
            merged_models = old.models + [m for m in models if m not in old.models]
            merged_structures = old.structures + [s for s in structures if s not in old.structures]
            session = cls(volume=volume, models=merged_models, structures=merged_structures,
                          present={**old.present, **(present or {})}, entries=old.entries, current=old.current,
                          reviewer=reviewer or old.reviewer, created_utc=old.created_utc)
        else:
            session = cls(volume=volume, models=list(models), structures=list(structures), present=present or {},
                          reviewer=reviewer)
        session.save(p)
        return session
