"""Run one model over every case of a cohort (batch mode), with prompts derived from each case's reference under
one recorded protocol, and write a cohort file that ``organsegbench evaluate`` reads next.

How each model is prompted:

* box models (SAM, MedSAM, SAM2, MedSAM2): boxes from the reference of each structure
  (:func:`organsegbench.prompts.prompts_from_mask`, protocol as given); each structure keeps the reference's label
  value, so the prediction and the reference share one labelling;
* text models (SAT, SegVol): the structure names as text prompts;
* automatic models (TotalSegmentator, MOOSE): no prompt; ``structures`` is not used.

The model is loaded once for the whole cohort. Every case writes ``<out>/<model>/<case>.nii.gz`` with its
``.provenance.json`` (protocol, weights sha256, the reference's sha256, seed, versions) and ``.segments.json``;
a case whose output exists with the same run key is not run again (resumable). A case that fails is reported with its
reason (an unexpected exception too, with its type) and the others go on; a cancelled run leaves no partial file
and resumes where it stopped. ``<out>/segment_runs.csv`` lists every case's
status; ``<out>/cohort.yaml`` is the input cohort with this model's predictions added.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from organsegbench.cohort.schema import CaseSpec, Cohort
from organsegbench.errors import ConfigError, EmptyMaskError, OrganSegBenchError
from organsegbench.prompts import PromptProtocol, PromptSet, prompts_from_mask

log = logging.getLogger(__name__)


@dataclass
class SegmentCohortResult:
    """Per-case statuses and where the outputs are."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    cohort_file: Path | None = None
    status_file: Path | None = None

    def counts(self) -> dict[str, int]:
        """Number of cases per status (``done``, ``cached``, ``failed``, ``skipped``)."""
        out: dict[str, int] = {}
        for r in self.rows:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out


def prompt_mode(model: Any) -> str:
    """``"box"``, ``"text"`` or ``"automatic"``: how :func:`segment_cohort` prompts ``model``."""
    kinds = model.capabilities.prompt_kinds
    if "box" in kinds:
        return "box"
    if "none" in kinds:
        return "automatic"
    if "text" in kinds:
        return "text"
    raise ConfigError(f"model {model.capabilities.name} takes only {sorted(kinds)} prompts",
                      "use a box-, text- or automatic model for cohort runs")


def case_prompts(case: CaseSpec, image: Any, structures: tuple[str, ...], protocol: PromptProtocol
                 ) -> tuple[PromptSet, list[str]]:
    """Box prompts of every structure found in the case's reference; returns ``(prompts, structures missing)``.

    A reference on another grid is resampled onto the image's (nearest neighbour; recorded), since box prompts are
    voxel indices of the image.

    Raises:
        EmptyMaskError: every structure lies outside the image after resampling (no overlap in physical space).
    """
    from organsegbench.download import sha256_file
    from organsegbench.io.geometry import align_to, same_grid
    from organsegbench.surfaces.inputs import read_mask_file, select_label

    original, names = read_mask_file(case.reference, case.vocabularies.get("reference"))
    resampled = not same_grid(original, image)
    ref = align_to(original, image, resample=True) if resampled else original
    boxes, records, missing, outside = [], {}, [], []
    for structure in structures:
        value = None
        try:
            value = select_label(names, structure, f"reference of case {case.id}",
                                 consequence="no prompt can be derived")
            ps = prompts_from_mask(ref.array, ref.spacing_zyx, PromptProtocol(**{**asdict(protocol), "label": value}),
                                   name=structure, out_label=int(value))
        except EmptyMaskError:
            missing.append(structure)
            if resampled and value is not None and np.any(original.array == value):
                outside.append(structure)
            continue
        boxes.extend(ps.boxes)
        records[structure] = ps.protocol
    if not boxes and outside:
        raise EmptyMaskError(
            f"case {case.id}: {', '.join(outside)} of reference {case.reference.name} lie outside the image once "
            "resampled onto its grid", "check that the reference belongs to this image (organsegbench info on both)")
    out = PromptSet(boxes=boxes, image_shape=tuple(image.shape),
                    protocol={"source": "reference_mask", "per_structure": records,
                              "reference": {"path": str(case.reference), "sha256": sha256_file(case.reference),
                                            "resampled_to_image_grid": resampled}})
    return out, missing


def run_key(model_name: str, weights: str | None, structures: tuple[str, ...], protocol: PromptProtocol,
            options: dict[str, Any]) -> str:
    """Key of a cohort run's settings: an output made with another key is run again."""
    blob = json.dumps({"model": model_name, "weights": weights, "structures": list(structures),
                       "protocol": asdict(protocol), "options": options}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cached(out: Path, key: str) -> bool:
    side = out.with_name(out.name + ".provenance.json")
    if not (out.is_file() and side.is_file()):
        return False
    try:
        return json.loads(side.read_text()).get("cohort_run_key") == key
    except (OSError, json.JSONDecodeError):
        return False


def segment_cohort(cohort: Cohort, model: Any, out_dir: Path, structures: tuple[str, ...] = (),
                   protocol: PromptProtocol | None = None, column: str | None = None,
                   progress: Callable[[int, int, str], None] | None = None) -> SegmentCohortResult:
    """Segment every case of ``cohort`` with ``model`` (see the module docstring); returns the per-case statuses.

    Raises:
        ConfigError: a box or text model without ``structures``.
    """
    from organsegbench.io.volumes import read_image

    mode = prompt_mode(model)
    protocol = protocol or PromptProtocol()
    if mode in ("box", "text") and not structures:
        raise ConfigError(f"model {model.capabilities.name} needs prompts: name the structures to prompt",
                          "pass --structures liver,spleen (names as in the references)")
    column = column or model.capabilities.name
    weights = getattr(model, "weights_arg", None)
    if weights is not None and Path(str(weights)).is_file():  # a checkpoint file: its content, not its name
        from organsegbench.models.weights import file_sha256  # cached beside the file, shared with the model

        weights = file_sha256(Path(str(weights)))
    key = run_key(model.capabilities.name, None if weights is None else str(weights), structures, protocol,
                  getattr(model, "options", {}))
    out_dir = Path(out_dir)
    folder = out_dir / column
    folder.mkdir(parents=True, exist_ok=True)
    result = SegmentCohortResult()
    outputs: dict[str, Path] = {}
    for i, case in enumerate(cohort.cases):
        if progress is not None:
            progress(i, len(cohort.cases), case.id)
        out = folder / f"{case.id}.nii.gz"
        row: dict[str, Any] = {"case": case.id, "model": column, "status": "done", "reason": "", "seconds": 0.0,
                               "n_boxes": 0, "missing_structures": "", "reference_resampled": False,
                               "output": str(out)}
        t0 = time.perf_counter()
        try:
            if _cached(out, key):
                row["status"] = "cached"
                outputs[case.id] = out
            elif case.image is None:
                row.update(status="skipped", reason="the cohort gives no image for this case")
            else:
                image = read_image(case.image)
                prompts = None
                if mode == "box":
                    prompts, missing = case_prompts(case, image, structures, protocol)
                    row["missing_structures"] = ",".join(missing)
                    row["n_boxes"] = len(prompts.boxes)
                    row["reference_resampled"] = prompts.protocol["reference"]["resampled_to_image_grid"]
                    if not prompts.boxes:
                        raise EmptyMaskError(f"case {case.id}: none of {', '.join(structures)} is in its reference",
                                             "check --structures against the reference's structures")
                elif mode == "text":
                    prompts = PromptSet(text=list(structures))
                res = model.segment(image, prompts, output="prompted")
                res.provenance["cohort_run_key"] = key
                res.provenance["cohort_case"] = case.id
                res.write(out)
                outputs[case.id] = out
        except OrganSegBenchError as exc:
            row.update(status="failed", reason=exc.message + (f" (fix: {exc.hint})" if exc.hint else ""))
            log.warning("case %s: %s", case.id, exc.message)
        except Exception as exc:  # noqa: BLE001 - one broken case must not stop a cohort; the reason is kept
            row.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
            log.warning("case %s failed", case.id, exc_info=True)
        row["seconds"] = round(time.perf_counter() - t0, 3)
        result.rows.append(row)
    if progress is not None:
        progress(len(cohort.cases), len(cohort.cases), "")
    result.status_file = _write_status(out_dir / "segment_runs.csv", result.rows)
    result.cohort_file = write_cohort_yaml(cohort, column, outputs, out_dir / "cohort.yaml")
    return result


def _write_status(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_cohort_yaml(cohort: Cohort, column: str, outputs: dict[str, Path], path: Path) -> Path:
    """The cohort with ``column``'s predictions added (paths relative to ``path``'s folder); atomic."""
    import yaml

    base = path.parent.resolve()

    def rel(p: Path | None) -> str | None:
        return None if p is None else os.path.relpath(Path(p).resolve(), base)

    present = {m for c in cohort.cases for m, p in c.predictions.items() if p is not None and m != column}
    present.add(column)
    cases = []
    for c in cohort.cases:
        preds = {m: rel(p) for m, p in c.predictions.items() if p is not None and m != column}
        preds[column] = rel(outputs[c.id]) if c.id in outputs else None  # None: evaluate reports it missing
        entry: dict[str, Any] = {"id": c.id, "reference": rel(c.reference), "predictions": preds}
        if c.image is not None:
            entry["image"] = rel(c.image)
        if c.attributes:
            entry["attributes"] = dict(c.attributes)
        vocabs = {k: v for k, v in c.vocabularies.items() if k != column and (k == "reference" or k in present)}
        if vocabs:
            entry["vocabularies"] = vocabs
        cases.append(entry)
    doc = {"name": f"{cohort.name or Path(cohort.path).stem} + {column}", "cases": cases}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.replace(path)
    return path
