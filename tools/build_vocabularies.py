"""Developer script: regenerate the label vocabulary JSON resources from the installed model packages.

Run from the repository root with the ``models`` extra installed::

    python tools/build_vocabularies.py            # writes organsegbench/resources/labels/*.json
    python tools/build_vocabularies.py --check    # exit 1 if the committed files differ from a fresh build

Sources (data facts, read at build time; the engine itself never imports these packages):

* TotalSegmentator label maps: ``totalsegmentator.map_to_binary.class_map`` (tasks ``total``, ``total_mr``,
  ``total_v1``).
* SNOMED-CT codes and colours: ``totalsegmentator/resources/totalsegmentator_snomed_mapping.csv`` (shipped in the
  totalsegmentator wheel; the same file TotalSegmentator uses to write DICOM SEG).
* MOOSE ``clin_ct_organs`` label map: the model table of the moosez README, as shipped in the wheel's
  ``moosez-*.dist-info/METADATA`` (the label map itself lives in the model's ``dataset.json`` inside the weights zip,
  which cannot be downloaded here). Pre-coordinated SNOMED codes: ``moosez.mappings.SNOMED.moose_to_snomed``.
* Structures no package codes (left/right lung, vertebrae as one class): SNOMED concepts from the DICOM standard as
  packaged by pydicom (``pydicom.sr.codedict.codes.SCT``) post-coordinated with the laterality modifiers of the
  TotalSegmentator CSV.

Curated knowledge (synonyms, plain organ names, MOOSE-to-canonical renames, display-name overrides) is kept in the
``CURATED`` JSON file next to this script, not in the engine.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import logging
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "organsegbench" / "resources" / "labels"
CURATED = Path(__file__).with_name("labels_curated.json")
log = logging.getLogger("build_vocabularies")

SCHEMA_VERSION = 1
VERTEBRA = re.compile(r"vertebrae_([CTLS]\d+)")


def synonyms_for(name: str, curated: dict[str, list[str]]) -> list[str]:
    """Curated synonyms plus the spellings MOOSE and radiologists use for single vertebrae (``vertebra_L1``, ``L1``)."""
    out = list(curated.get(name, []))
    if m := VERTEBRA.fullmatch(name):
        out += [f"vertebra_{m.group(1)}", m.group(1)]
    return out


def _code(scheme: str, value: str, meaning: str) -> dict | None:
    return {"value": value, "scheme": scheme, "meaning": meaning} if value else None


def read_ts_csv() -> tuple[dict[str, dict], str]:
    """Rows of TotalSegmentator's SNOMED mapping keyed by structure name, and a source description."""
    import totalsegmentator

    path = Path(totalsegmentator.__file__).parent / "resources" / "totalsegmentator_snomed_mapping.csv"
    rows: dict[str, dict] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            p = "SegmentedProperty"
            rgb = [int(v) for v in row["DicomRGBColor"].split(",")] if row["DicomRGBColor"] else None
            rows[row["Structure"]] = {
                "category": _code(row[f"{p}CategoryCodeSequence.CodingSchemeDesignator"],
                                  row[f"{p}CategoryCodeSequence.CodeValue"],
                                  row[f"{p}CategoryCodeSequence.CodeMeaning"]),
                "type": _code(row[f"{p}TypeCodeSequence.CodingSchemeDesignator"],
                              row[f"{p}TypeCodeSequence.CodeValue"], row[f"{p}TypeCodeSequence.CodeMeaning"]),
                "modifier": _code(row[f"{p}TypeModifierCodeSequence.CodingSchemeDesignator"],
                                  row[f"{p}TypeModifierCodeSequence.CodeValue"],
                                  row[f"{p}TypeModifierCodeSequence.CodeMeaning"]),
                "color": rgb,
            }
    version = importlib.metadata.version("totalsegmentator")
    return rows, f"totalsegmentator {version}: resources/totalsegmentator_snomed_mapping.csv"


def read_moose_table(model: str) -> tuple[dict[int, str], str]:
    """Label map of a MOOSE model from the README table shipped in the moosez wheel metadata."""
    text = importlib.metadata.distribution("moosez").read_text("METADATA") or ""
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 2 and cells[1] == f"`{model}`":
            pairs = re.findall(r"(\d+)\s*:\s*([A-Za-z0-9_ ]+?)\s*(?:,|$)", cells[2])
            labels = {int(k): v.strip() for k, v in pairs}
            version = importlib.metadata.version("moosez")
            return labels, f"moosez {version}: wheel METADATA (README model table, row `{model}`)"
    raise SystemExit(f"model {model!r} not found in the moosez README table")


def display_name(name: str, overrides: dict[str, str]) -> str:
    """Human-readable name: ``kidney_left`` -> ``Left kidney``, ``rib_right_3`` -> ``Right rib 3``."""
    if name in overrides:
        return overrides[name]
    if m := VERTEBRA.fullmatch(name):
        return f"{m.group(1)} vertebra"
    tokens = name.split("_")
    side = next((t for t in tokens if t in ("left", "right")), None)
    rest = [t for t in tokens if t != side]
    text = " ".join(rest)
    if side:
        text = f"{side} {text}"
    return text[:1].upper() + text[1:]


def build() -> dict[str, object]:
    """Build every JSON document; returns {file name: document}."""
    from moosez.mappings import SNOMED as MOOSE_SNOMED  # noqa: N811
    from pydicom.sr.codedict import codes
    from totalsegmentator.map_to_binary import class_map

    curated = json.loads(CURATED.read_text())
    ts_rows, ts_src = read_ts_csv()
    ts_version = importlib.metadata.version("totalsegmentator")
    moose_version = importlib.metadata.version("moosez")
    pydicom_version = importlib.metadata.version("pydicom")
    left = ts_rows["kidney_left"]["modifier"]
    right = ts_rows["kidney_right"]["modifier"]
    anatomical = ts_rows["liver"]["category"]

    vocabs: dict[str, dict] = {}
    for vname, task, title, modality in (
        ("total", "total", "TotalSegmentator v2, task 'total' (CT, 117 classes)", "CT"),
        ("total_mr", "total_mr", "TotalSegmentator v2, task 'total_mr' (MR, 50 classes)", "MR"),
        ("total_v1", "total_v1", "TotalSegmentator v1 (CT, 104 classes; IDC NLST SEGs, v1.5.6)", "CT"),
    ):
        vocabs[vname] = {
            "schema_version": SCHEMA_VERSION, "name": vname, "title": title, "modality": modality,
            "aliases": curated["aliases"].get(vname, []),
            "source": {"package": "totalsegmentator", "version": ts_version,
                       "location": f"totalsegmentator.map_to_binary.class_map[{task!r}]"},
            "labels": {str(k): {"name": v, "structure": v} for k, v in sorted(class_map[task].items())},
        }
    moose_labels, moose_src = read_moose_table("clin_ct_organs")
    renames = curated["moose_renames"]
    vocabs["moose_clin_ct_organs"] = {
        "schema_version": SCHEMA_VERSION, "name": "moose_clin_ct_organs",
        "title": "MOOSE (moosez) model 'clin_ct_organs' (CT, 19 classes)", "modality": "CT",
        "aliases": curated["aliases"].get("moose_clin_ct_organs", []),
        "source": {"package": "moosez", "version": moose_version, "location": moose_src},
        "labels": {str(k): {"name": v, "structure": renames.get(v, v)} for k, v in sorted(moose_labels.items())},
    }
    vocabs["organs"] = {
        "schema_version": SCHEMA_VERSION, "name": "organs",
        "title": "Plain organ names for text-prompted models (SAT / SegVol style prompts)", "modality": "CT",
        "aliases": curated["aliases"].get("organs", []),
        "source": {"package": "organsegbench", "version": "curated",
                   "location": curated["organs"]["source"]},
        "labels": {str(i): {"name": plain, "structure": canon}
                   for i, (plain, canon) in enumerate(curated["organs"]["labels"], start=1)},
    }

    # canonical structures: every structure of a vocabulary plus harmonisation targets, in first-seen order
    harm = json.loads((OUT / "harmonisation.json").read_text()) if (OUT / "harmonisation.json").exists() else None
    names: list[str] = []
    for doc in vocabs.values():
        for entry in doc["labels"].values():
            if entry["structure"] not in names:
                names.append(entry["structure"])
    for extra in curated["extra_structures"]:
        if extra not in names:
            names.append(extra)
    if harm:
        for level in harm["levels"].values():
            for target in level.get("map", {}).values():
                if target not in names:
                    names.append(target)

    moose_codes = {renames.get(k, k): v for k, v in MOOSE_SNOMED.moose_to_snomed.items()
                   if k in moose_labels.values()}
    special = curated["special_codes"]
    members = {}
    if harm:
        for level in harm["levels"].values():
            for src, dst in level.get("map", {}).items():
                members.setdefault(dst, []).append(src)
    structures = []
    for name in names:
        entry: dict[str, object] = {"name": name, "display_name": display_name(name, curated["display_names"]),
                                    "synonyms": synonyms_for(name, curated["synonyms"])}
        row = ts_rows.get(name)
        if row:
            entry.update(category=row["category"], type=row["type"], modifier=row["modifier"], code_source=ts_src)
        elif name in special:
            spec = special[name]
            if spec["from"] == "pydicom":
                c = getattr(codes.SCT, spec["keyword"])
                entry.update(category=anatomical, type=_code("SCT", c.value, c.meaning),
                             modifier={"left": left, "right": right, None: None}[spec.get("laterality")],
                             code_source=f"pydicom {pydicom_version}: pydicom.sr.codedict codes.SCT.{spec['keyword']}"
                             + (f" + laterality modifier from {ts_src}" if spec.get("laterality") else ""))
            elif spec["from"] == "moosez":
                m = MOOSE_SNOMED.moose_to_snomed[spec["key"]]
                entry.update(category=anatomical, type=_code("SCT", m["ID"], m["name"]), modifier=None,
                             code_source=f"moosez {moose_version}: moosez.mappings.SNOMED.moose_to_snomed")
        else:
            entry.update(category=None, type=None, modifier=None, code_source=None)
        alt = []
        m = moose_codes.get(name)
        if m and (not entry["type"] or m["ID"] != entry["type"]["value"]):
            alt.append({"type": _code("SCT", m["ID"], m["name"]), "modifier": None,
                        "source": f"moosez {moose_version}: moosez.mappings.SNOMED.moose_to_snomed"})
        entry["alt_codes"] = alt
        if row and row["color"]:
            entry.update(color=row["color"], color_source=ts_src)
        else:
            donor = next((ts_rows[s]["color"] for s in members.get(name, []) if s in ts_rows), None)
            if donor:
                entry.update(color=donor, color_source="first merged member's TotalSegmentator colour")
            else:
                entry.update(color=curated["colors"][name], color_source="organsegbench (curated)")
        structures.append(entry)
    docs: dict[str, object] = {f"{k}.json": v for k, v in vocabs.items()}
    docs["structures.json"] = {"schema_version": SCHEMA_VERSION, "structures": structures}
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    docs = build()
    differs = []
    for fname, doc in docs.items():
        text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
        target = OUT / fname
        if args.check:
            if not target.exists() or target.read_text() != text:
                differs.append(fname)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            log.info("wrote %s", target.relative_to(ROOT))
    if differs:
        log.error("out of date: %s", ", ".join(differs))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
