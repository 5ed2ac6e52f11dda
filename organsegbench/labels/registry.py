"""Registry of label vocabularies: built-in JSON resources plus user vocabularies from JSON files.

Every JSON document is checked against its schema (``resources/labels/schema/*.schema.json``) on load; errors name
the file, the place in the document and what is wrong.
"""

from __future__ import annotations

import json
import logging
import threading
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from organsegbench.errors import ConfigError, InputFileError, unknown_name
from organsegbench.labels.structures import Catalogue, Structure
from organsegbench.labels.vocabulary import Vocabulary

log = logging.getLogger(__name__)

_RESOURCE_FILES = ("structures.json", "harmonisation.json")
_lock = threading.RLock()
_catalogue: Catalogue | None = None
_user: dict[str, Vocabulary] = {}  # registered user vocabularies by name
_builtin_cache: dict[str, Vocabulary] = {}


def _resource_dir() -> Any:
    return resources.files("organsegbench") / "resources" / "labels"


@cache
def _schema_registry() -> Any:
    from referencing import Registry, Resource

    schema_dir = _resource_dir() / "schema"
    registry = Registry()
    schemas: dict[str, dict] = {}
    for entry in schema_dir.iterdir():
        if entry.name.endswith(".schema.json"):
            doc = json.loads(entry.read_text(encoding="utf-8"))
            schemas[entry.name.removesuffix(".schema.json")] = doc
            registry = registry.with_resource(doc["$id"], Resource.from_contents(doc))
    return registry, schemas


def validate(document: Any, kind: str, origin: str) -> None:
    """Check ``document`` against schema ``kind`` (``vocabulary``, ``structures``, ``harmonisation``).

    Raises:
        ConfigError: listing every violation with its location in the document.
    """
    import jsonschema

    registry, schemas = _schema_registry()
    validator = jsonschema.Draft202012Validator(schemas[kind], registry=registry)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors[:10]:
            where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
            lines.append(f"  at {where}: {err.message}")
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ConfigError(
            f"{origin} is not a valid {kind} file:\n" + "\n".join(lines) + more,
            f"fix the entries listed above (the format is described in resources/labels/schema/{kind}.schema.json)")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputFileError(f"vocabulary file {str(path)!r} does not exist", "check the path")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                          "fix the JSON syntax at that position") from exc


def catalogue() -> Catalogue:
    """The structure catalogue (built-in structures plus those defined by loaded user vocabularies)."""
    global _catalogue
    with _lock:
        if _catalogue is None:
            doc = json.loads((_resource_dir() / "structures.json").read_text(encoding="utf-8"))
            validate(doc, "structures", "structures.json")
            cat = Catalogue()
            cat.add(Structure.from_dict(s) for s in doc["structures"])
            _catalogue = cat
        return _catalogue


def _parse_vocabulary(doc: Any, origin: str, path: Path | None) -> Vocabulary:
    validate(doc, "vocabulary", origin)
    cat = catalogue()
    if doc.get("structures"):
        new = [Structure.from_dict(s) for s in doc["structures"]]
        known = [s for s in new if s.name in cat.structures and cat.structures[s.name] == s]
        cat.add([s for s in new if s not in known], origin=origin)
    labels: dict[int, str] = {}
    source_names: dict[int, str] = {}
    for key, entry in doc["labels"].items():
        name = entry if isinstance(entry, str) else entry["name"]
        target = name if isinstance(entry, str) else entry.get("structure", name)
        canon = cat.find(target)
        if canon is None:
            err = cat.unknown(target)
            raise ConfigError(
                f"{origin}: label {key} names structure {target!r}, which is not a known structure ({err.hint})",
                "use a known canonical name or synonym in 'structure', or define the structure under 'structures'")
        labels[int(key)] = canon
        source_names[int(key)] = name
    return Vocabulary(
        name=doc["name"], labels=labels, source_names=source_names, title=doc.get("title", ""),
        modality=doc.get("modality", ""), aliases=tuple(doc.get("aliases", ())), source=doc.get("source", {}),
        path=path)


@cache
def _builtin_index() -> dict[str, str]:
    """Registry name or alias (lower case) -> resource file name of every built-in vocabulary."""
    index: dict[str, str] = {}
    for entry in _resource_dir().iterdir():
        if entry.name.endswith(".json") and entry.name not in _RESOURCE_FILES:
            doc = json.loads(entry.read_text(encoding="utf-8"))
            for name in (doc["name"], *doc.get("aliases", ())):
                index[name.lower()] = entry.name
    return index


def list_vocabularies() -> list[str]:
    """Names of the built-in and registered vocabularies (aliases left out)."""
    names = {Path(f).stem for f in _builtin_index().values()} | set(_user)
    return sorted(names)


def load_vocabulary(path: str | Path) -> Vocabulary:
    """Read a user vocabulary JSON file (schema-checked); structures it defines join the catalogue.

    Raises:
        InputFileError: the file is missing.
        ConfigError: invalid JSON, a schema violation or an unknown structure (all named, with the fix).
    """
    path = Path(path)
    with _lock:
        return _parse_vocabulary(_read_json(path), str(path), path)


def register_vocabulary(vocab: Vocabulary | str | Path) -> Vocabulary:
    """Make a user vocabulary available to :func:`get_vocabulary` under its name.

    Raises:
        ConfigError: the name is taken by a built-in vocabulary.
    """
    if not isinstance(vocab, Vocabulary):
        vocab = load_vocabulary(vocab)
    if vocab.name.lower() in _builtin_index():
        raise ConfigError(f"vocabulary name {vocab.name!r} is taken by a built-in vocabulary",
                          "give the user vocabulary another 'name'")
    with _lock:
        _user[vocab.name] = vocab
    return vocab


def get_vocabulary(name: str | Path) -> Vocabulary:
    """A vocabulary by registry name or alias (case-insensitive), or from a JSON file path.

    Built-in names: ``total``, ``total_mr``, ``total_v1``, ``moose_clin_ct_organs``, ``organs``.

    Raises:
        UnknownNameError: unknown name (lists close matches).
    """
    key = str(name)
    with _lock:
        for user_name, vocab in _user.items():
            if user_name.lower() == key.lower():
                return vocab
        fname = _builtin_index().get(key.lower())
        if fname is not None:
            if fname not in _builtin_cache:
                doc = json.loads((_resource_dir() / fname).read_text(encoding="utf-8"))
                _builtin_cache[fname] = _parse_vocabulary(doc, fname, None)
            return _builtin_cache[fname]
    if key.endswith(".json") or Path(key).is_file():
        return load_vocabulary(key)
    choices = sorted(set(list_vocabularies()) | set(_builtin_index()))
    raise unknown_name("vocabulary", key, choices)


def harmonisation_document() -> dict[str, Any]:
    """The schema-checked ``harmonisation.json`` document."""
    doc = json.loads((_resource_dir() / "harmonisation.json").read_text(encoding="utf-8"))
    validate(doc, "harmonisation", "harmonisation.json")
    return doc


def list_structures() -> list[str]:
    """Every canonical structure name."""
    return sorted(catalogue().structures)


def get_structure(name: str) -> Structure:
    """The :class:`Structure` for any spelling of its name (case-insensitive).

    Raises:
        UnknownNameError: listing close matches.
    """
    cat = catalogue()
    return cat.structures[cat.resolve(name)]


def canonical_name(name: str) -> str:
    """Canonical structure name for any spelling: canonical, display name, synonym, v1/MOOSE/plain name.

    ``canonical_name("left kidney") == "kidney_left"``; ``canonical_name("IVC") == "inferior_vena_cava"``.

    Raises:
        UnknownNameError: listing close matches.
    """
    return catalogue().resolve(name)
