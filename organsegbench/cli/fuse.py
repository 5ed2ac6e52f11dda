"""``organsegbench fuse``: training-free consensus of several models' segmentations of one case."""

from __future__ import annotations

import argparse
import json
import logging
import math
import textwrap
from pathlib import Path

from organsegbench.errors import ConfigError, EmptyMaskError, InputFileError, unknown_name

log = logging.getLogger(__name__)

PICTURE_OUT = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fuse`` sub-command."""
    from organsegbench.fusion import describe_methods

    methods = describe_methods()
    p = subparsers.add_parser(
        "fuse", help="fuse several predictions of one case (STAPLE, majority vote, mean)",
        description=textwrap.fill(
            "Fuse predictions of one case into a consensus label map and report per-model estimates (STAPLE "
            "sensitivity/specificity; agreement of every model with the consensus). Label maps from models with "
            "different vocabularies are harmonised first: the files' own segment names, or --vocabulary (one for "
            "all, or MODEL=VOCAB per input). 8-bit PNG/JPEG masks are binarised (> 127).", 100)
        + "\n\nmethods:\n" + "\n".join(textwrap.fill(f"{k}: {v}", 100, initial_indent="  ", subsequent_indent="    ")
                                       for k, v in methods.items())
        + "\n\nexample:\n  organsegbench fuse a.nii.gz b.nii.gz c.nii.gz --structure liver --out liver_staple.nii.gz \\\n"
          "      --vocabulary total --vocabulary b=total_v1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pred", nargs="+", type=Path, help="prediction files (two or more), same grid")
    p.add_argument("--method", default="staple", choices=sorted(methods), help="fusion method (default staple)")
    p.add_argument("--out", required=True, type=Path,
                   help="fused label map (.nii.gz/.nrrd/.mha; .png for picture masks, written 0/255); a JSON report "
                        "is written next to it (<out>.json)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="mean/STAPLE: keep voxels whose consensus probability is >= this (default 0.5)")
    p.add_argument("--names", help="comma-separated model names (default: file names)")
    p.add_argument("--vocabulary", action="append", metavar="[MODEL=]VOCAB",
                   help="vocabulary naming the label values of files without names (e.g. total); MODEL=VOCAB "
                        "for one input (MODEL as in --names / the file names); repeatable")
    p.add_argument("--structure", help="fuse only this structure (binary masks; binary STAPLE gives one "
                                       "sensitivity/specificity per model)")
    p.set_defaults(func=run)


def _name(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".seg.nrrd", ".nii", ".nrrd", ".mha", ".png", ".jpg", ".dcm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _default_names(paths: list[Path]) -> list[str]:
    """File names without extension and without the suffix they all share (``SAM_label_c1`` -> ``SAM``)."""
    import os

    names = [_name(p) for p in paths]
    common = os.path.commonprefix([n[::-1] for n in names])[::-1]
    cut = common[common.find("_"):] if "_" in common else ""
    stripped = [n[: len(n) - len(cut)] if cut else n for n in names]
    return stripped if all(stripped) and len(set(stripped)) == len(stripped) else names


def _vocabularies(entries: list[str] | None, names: list[str]) -> dict[str, str]:
    """``--vocabulary`` values as {model name: vocabulary}; key ``""`` is the default for every input."""
    out: dict[str, str] = {}
    for entry in entries or []:
        model, _, vocab = entry.rpartition("=")
        if model and model not in names:
            raise unknown_name("model", model, names)
        out[model] = vocab
    return out


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


def run(args: argparse.Namespace) -> int:
    """Read the predictions, fuse them, write the label map and the JSON report."""
    import numpy as np

    from organsegbench.fusion import fuse
    from organsegbench.surfaces.inputs import read_mask_file

    if len(args.pred) < 2:
        raise ConfigError(f"fusion needs at least 2 predictions; got {len(args.pred)}",
                          hint="list two or more prediction files")
    names = [n.strip() for n in args.names.split(",")] if args.names else _default_names(args.pred)
    if len(names) != len(args.pred):
        raise ConfigError(f"--names gives {len(names)} names for {len(args.pred)} files",
                          hint="give one name per prediction file")
    if len(set(names)) != len(names):
        names = [f"{i + 1}_{n}" for i, n in enumerate(names)]
    vocabularies = _vocabularies(args.vocabulary, names)
    images, labels, missed = [], [], []
    for name, path in zip(names, args.pred, strict=True):
        img, lab = read_mask_file(path, vocabularies.get(name, vocabularies.get("")), args.structure)
        if args.structure:
            from organsegbench.surfaces.inputs import select_label

            try:
                value = select_label(lab, args.structure, str(path))
            except EmptyMaskError as exc:  # this model missed the structure: it votes "background" everywhere
                log.warning("%s; counted as an empty mask", exc.message.split(" (it holds")[0])
                missed.append(exc)
                value = None
            mask = np.zeros_like(img.array, np.uint8) if value is None else (img.array == value).astype(np.uint8)
            img, lab = img.with_array(mask), {1: args.structure}
        images.append(img)
        labels.append(lab)
    if missed and len(missed) == len(args.pred):
        raise missed[0]
    generic = all(n == "foreground" or n.startswith("label_") for lab in labels for n in lab.values())
    options = {"threshold": args.threshold} if args.method in ("mean", "staple") else {}
    result = fuse(images, args.method, names=names, labels=None if generic else labels, **options)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    arr = result.array
    if out.suffix.lower() in PICTURE_OUT:
        import SimpleITK as sitk

        if arr.shape[0] != 1:
            raise InputFileError(f"{out} is a picture format but the fused map has {arr.shape[0]} slices",
                                 hint="write a volume format (.nii.gz, .nrrd)")
        if arr.max(initial=0) > 1:
            raise InputFileError(f"{out} is a picture format but the fused map has {int(arr.max())} labels",
                                 hint="write a volume format (.nii.gz, .nrrd)")
        sitk.WriteImage(sitk.GetImageFromArray((arr[0] > 0).astype(np.uint8) * 255), str(out))
    else:
        from organsegbench.io import write_image

        write_image(result.labelmap, out)
    report = {"method": args.method, "inputs": [str(p) for p in args.pred], "models": names, "labels": result.labels,
              "per_model": result.per_model, "fused_voxels": int(np.count_nonzero(arr)), "output": str(out),
              "metadata": result.metadata}
    report_path = out.with_name(out.name + ".json")
    report_path.write_text(json.dumps(report, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist")
                                      else str(o)))
    print(f"{args.method}: {len(names)} models -> {out} ({report['fused_voxels']} voxels)")  # noqa: T201
    for name, stats in result.per_model.items():
        shown = {k: v for k, v in stats.items() if k != "confusion_matrix_observed_by_true"}
        print(f"  {name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))  # noqa: T201
    print(f"  report: {report_path}")  # noqa: T201
    return 0
