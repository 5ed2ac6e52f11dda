"""Cohort files: which cases, images, reference and predicted label maps, subject attributes.

Two formats, both with paths relative to the cohort file's folder (absolute paths also work):

CSV — one row per case::

    id,image,reference,pred:totalseg_fast,pred:moose,vocab:reference,vocab:moose,sex,age,bmi
    c01,img/c01.nii.gz,ref/c01.nii.gz,fast/c01.nii.gz,moose/c01.nii.gz,total,moose_clin_ct_organs,F,34,22.5

  Reserved columns: ``id`` (required), ``image`` (optional: used for thumbnails and header timing fields),
  ``reference`` (required), ``pred:<model>`` (at least one), ``vocab:<model>`` / ``vocab:reference`` (label
  vocabulary names, optional). Every other column is a subject attribute (``attr:<name>`` forces one). A column that
  looks like a misspelt reserved or common attribute name (``refernce``, ``pred_moose``, ``bmii``) is an error.

YAML — a mapping with ``cases`` (a list), optional ``name`` and ``vocabularies`` (defaults per model)::

    vocabularies: {reference: total, moose: moose_clin_ct_organs}
    cases:
      - id: c01
        image: img/c01.nii.gz
        reference: ref/c01.nii.gz
        predictions: {totalseg_fast: fast/c01.nii.gz, moose: moose/c01.nii.gz}
        attributes: {sex: F, age: 34, bmi: 22.5}
        vocabularies: {moose: moose_clin_ct_organs}

  Unknown keys, vocabulary keys that name no model and misspelt common attribute names (``sx``) are errors, as in
  CSV; ``attr:<name>`` forces an attribute.

Cardiac cohorts add the attributes ``subject`` and ``phase`` (``ED``/``ES``) and optionally ``heart_rate`` (bpm).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from organsegbench.errors import ConfigError, InputFileError

REFERENCE = "reference"
RESERVED = ("id", "image", "reference")
PREFIXES = ("pred", "vocab", "attr")
#: common attribute names: a column close to (but not equal to) one of these is treated as a typo
KNOWN_ATTRIBUTES = ("sex", "age", "bmi", "subject", "phase", "heart_rate", "weight", "height", "site", "scanner")
YAML_TOP_KEYS = ("name", "cases", "vocabularies", "description")
YAML_CASE_KEYS = ("id", "image", "reference", "predictions", "attributes", "vocabularies")
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]*$")


@dataclass
class CaseSpec:
    """One case of a cohort (paths absolute, resolved from the cohort file's folder)."""

    id: str
    reference: Path
    predictions: dict[str, Path | None]
    image: Path | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    vocabularies: dict[str, str] = field(default_factory=dict)  # model or "reference" -> vocabulary name


@dataclass
class Cohort:
    """A parsed, validated cohort."""

    path: Path
    cases: list[CaseSpec]
    models: list[str]
    name: str = ""

    @property
    def attribute_names(self) -> list[str]:
        """Attribute names used by any case, in first-seen order."""
        seen: dict[str, None] = {}
        for c in self.cases:
            seen.update(dict.fromkeys(c.attributes))
        return list(seen)


def _typo(name: str, choices: tuple[str, ...] | list[str], cutoff: float = 0.75) -> str | None:
    hits = difflib.get_close_matches(name.lower(), list(choices), n=1, cutoff=cutoff)
    return hits[0] if hits else None


def _resolve(base: Path, value: Any) -> Path | None:
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
        return None
    p = Path(str(value).strip()).expanduser()
    return p if p.is_absolute() else (base / p)


def _check_model(name: str, where: str) -> str:
    if not _MODEL_RE.match(name):
        raise ConfigError(f"model name {name!r} in {where} is not valid",
                          hint="use letters, digits and _ . + - only, e.g. pred:totalseg_fast")
    return name


def _classify_column(col: str) -> tuple[str, str]:
    """(kind, name) of a CSV column: kind in id/image/reference/pred/vocab/attr; ConfigError for typos."""
    c = col.strip()
    if c.lower() in RESERVED:
        return c.lower(), c.lower()
    if ":" in c:
        prefix, _, rest = c.partition(":")
        p = prefix.strip().lower()
        if p in PREFIXES and rest.strip():
            return p, _attribute_name(rest.strip()) if p == "attr" else rest.strip()
        near = _typo(p, PREFIXES + ("prediction", "vocabulary"), 0.6)
        near = {"prediction": "pred", "vocabulary": "vocab"}.get(near or "", near)
        raise ConfigError(f"cohort column {col!r} has an unknown prefix {prefix!r}",
                          hint=f"did you mean {near}:{rest}?" if near else
                          "prefixes are pred:<model>, vocab:<model|reference> and attr:<name>")
    near = _typo(c, RESERVED + KNOWN_ATTRIBUTES)
    if near is None and re.match(r"^(pred|prediction|vocab|vocabulary)[_\-. ]", c, re.IGNORECASE):
        head, rest = re.split(r"[_\-. ]", c, maxsplit=1)
        near = f"{'pred' if head.lower().startswith('pred') else 'vocab'}:{rest}"
    if near is not None and near != c.lower():
        raise ConfigError(f"cohort column {col!r} is not a known column",
                          hint=f"did you mean {near!r}? (prefix a genuine attribute with attr:, e.g. attr:{c})")
    return "attr", _attribute_name(c)


def _attribute_name(name: str) -> str:
    """Common attribute names in lower case (``Sex`` -> ``sex``); other names as given."""
    return name.lower() if name.lower() in KNOWN_ATTRIBUTES else name


def _coerce(value: Any) -> Any:
    """CSV cell -> number when it parses, None when empty, else stripped text."""
    if value is None:
        return None
    s = str(value).strip()
    if s == "" or s.lower() in ("nan", "na", "n/a", "none"):
        return None
    try:
        f = float(s)
        return int(f) if f.is_integer() and re.fullmatch(r"[+-]?\d+", s) else f
    except ValueError:
        return s


def parse_csv(path: Path, require_predictions: bool = True) -> Cohort:
    """Parse and validate a CSV cohort file (``require_predictions=False``: image + reference cohorts to segment)."""
    import csv

    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    if not columns:
        raise ConfigError(f"cohort file {str(path)!r} is empty", hint="add a header row: id,reference,pred:<model>")
    kinds = {col: _classify_column(col) for col in columns}
    for required in ("id", "reference"):
        if required not in {k for k, _ in kinds.values()}:
            raise ConfigError(f"cohort file {str(path)!r} has no {required!r} column (columns: {columns})",
                              hint=f"add a column named {required}")
    models = [name for k, name in kinds.values() if k == "pred"]
    if not models and require_predictions:
        raise ConfigError(f"cohort file {str(path)!r} has no prediction column (columns: {columns})",
                          hint="add one column per model named pred:<model>")
    for m in models:
        _check_model(m, f"column pred:{m}")
    for k, name in kinds.values():
        if k == "vocab" and name != REFERENCE and name not in models:
            near = _typo(name, models + [REFERENCE], 0.5)
            raise ConfigError(f"column vocab:{name} names no model of the cohort (models: {models})",
                              hint=f"did you mean vocab:{near}?" if near else
                              f"use vocab:<model> for a model of the cohort ({', '.join(models)}) or vocab:reference")
    base = path.parent
    cases = []
    for i, row in enumerate(rows, start=2):
        get = {kinds[c]: v for c, v in row.items() if c in kinds}
        cid = str(get.get(("id", "id")) or "").strip()
        if not cid:
            raise ConfigError(f"{path.name} line {i}: empty id", hint="give every case a unique id")
        cases.append(CaseSpec(
            id=cid,
            reference=_resolve(base, get.get(("reference", "reference"))),  # type: ignore[arg-type]
            image=_resolve(base, get.get(("image", "image"))),
            predictions={m: _resolve(base, get.get(("pred", m))) for m in models},
            attributes={name: _coerce(v) for (k, name), v in get.items() if k == "attr"},
            vocabularies={name: str(v).strip() for (k, name), v in get.items() if k == "vocab" and str(v).strip()},
        ))
    return _finish(path, cases, models)


def _check_keys(found: Any, allowed: tuple[str, ...], where: str) -> None:
    for key in found:
        if key not in allowed:
            near = _typo(str(key), allowed, 0.6)
            raise ConfigError(f"unknown key {key!r} in {where}",
                              hint=f"did you mean {near!r}?" if near else f"allowed keys: {', '.join(allowed)}")


def parse_yaml(path: Path, require_predictions: bool = True) -> Cohort:
    """Parse and validate a YAML cohort file (``require_predictions=False``: image + reference cohorts to segment)."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"cohort file {str(path)!r} is not valid YAML: {exc}", hint="fix the YAML syntax") from exc
    if isinstance(doc, list):
        doc = {"cases": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list) or not doc["cases"]:
        raise ConfigError(f"cohort file {str(path)!r} has no list of cases",
                          hint="write a mapping with `cases:` holding one entry per case")
    _check_keys(doc, YAML_TOP_KEYS, f"{path.name} (top level)")
    defaults = {str(k): str(v) for k, v in (doc.get("vocabularies") or {}).items()}
    base = path.parent
    cases, models = [], []
    for i, c in enumerate(doc["cases"], start=1):
        if not isinstance(c, dict):
            raise ConfigError(f"{path.name} case #{i} is not a mapping", hint="write id:, reference:, predictions:")
        where = f"{path.name} case #{i} ({c.get('id', 'no id')})"
        _check_keys(c, YAML_CASE_KEYS, where)
        for key in ("id", "reference", "predictions") if require_predictions else ("id", "reference"):
            if not c.get(key):
                raise ConfigError(f"{where} lacks {key!r}", hint=f"add {key}: to every case")
        preds = c.get("predictions") or {}
        if not isinstance(preds, dict):
            raise ConfigError(f"{where}: predictions must map model name -> file",
                              hint="predictions: {model_a: a/c01.nii.gz}")
        for m in preds:
            if str(m) not in models:
                models.append(_check_model(str(m), where))
        attrs = c.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise ConfigError(f"{where}: attributes must be a mapping", hint="attributes: {sex: F, age: 40}")
        cases.append(CaseSpec(
            id=str(c["id"]), reference=_resolve(base, c["reference"]),  # type: ignore[arg-type]
            image=_resolve(base, c.get("image")),
            predictions={str(m): _resolve(base, p) for m, p in preds.items()},
            attributes={_yaml_attribute(str(k), where): v for k, v in attrs.items()},
            vocabularies={**defaults, **{str(k): str(v) for k, v in (c.get("vocabularies") or {}).items()}},
        ))
    for case in cases:  # a model listed for some cases only is "missing" for the others
        for m in models:
            case.predictions.setdefault(m, None)
        _check_vocabulary_keys(case, models, f"{path.name} case {case.id!r} (or its top-level vocabularies)")
    return _finish(path, cases, models, name=str(doc.get("name") or ""))


def _yaml_attribute(key: str, where: str) -> str:
    """Attribute name of a YAML ``attributes`` key: ``attr:<name>`` forces one; a near miss of a common attribute
    name (``sx``, ``bmii``) is an error, as for CSV columns."""
    if key.lower().startswith("attr:") and key[5:].strip():
        return _attribute_name(key[5:].strip())
    near = _typo(key, KNOWN_ATTRIBUTES)
    if near is not None and near != key.lower():
        raise ConfigError(f"attribute {key!r} in {where} is not a known attribute",
                          hint=f"did you mean {near!r}? (write attr:{key} to keep it as a genuine attribute)")
    return _attribute_name(key)


def _check_vocabulary_keys(case: CaseSpec, models: list[str], where: str) -> None:
    """Every vocabulary key must be ``reference`` or a model of the cohort (as ``vocab:<model>`` CSV columns)."""
    for key in case.vocabularies:
        if key != REFERENCE and key not in models:
            near = _typo(key, models + [REFERENCE], 0.5)
            raise ConfigError(f"vocabulary key {key!r} in {where} names no model of the cohort (models: {models})",
                              hint=f"did you mean {near!r}?" if near else
                              f"use a model of the cohort ({', '.join(models)}) or reference")


def _finish(path: Path, cases: list[CaseSpec], models: list[str], name: str = "") -> Cohort:
    if not cases:
        raise ConfigError(f"cohort file {str(path)!r} lists no cases", hint="add at least one case")
    seen: set[str] = set()
    for c in cases:
        if c.id in seen:
            raise ConfigError(f"case id {c.id!r} appears twice in {path.name}", hint="give every case a unique id")
        seen.add(c.id)
    return Cohort(path=path, cases=cases, models=models, name=name or path.stem)


def load_cohort(path: str | Path, require_predictions: bool = True) -> Cohort:
    """Read a cohort file (``.csv``, ``.yaml``/``.yml``); raises :class:`ConfigError` naming any bad column/key.

    ``require_predictions=False`` accepts cohorts of images and references only (to be segmented first)."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"cohort file {str(p)!r} does not exist", hint="give the path of a .csv or .yaml file")
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return parse_csv(p.resolve(), require_predictions)
    if suffix in (".yaml", ".yml"):
        return parse_yaml(p.resolve(), require_predictions)
    raise ConfigError(f"cohort file {str(p)!r} has an unknown extension {suffix!r}",
                      hint="use a .csv or a .yaml/.yml cohort file")
