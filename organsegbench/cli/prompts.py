"""``organsegbench prompts REF --structure NAME --out FILE``: box prompts derived from a reference mask under an
explicit, recorded protocol (for benchmarking box-prompted models with ``segment --prompts FILE``)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

EXAMPLE = """examples:
  organsegbench prompts ref.nii.gz --structure liver --vocabulary total --margin-mm 5 --out liver_prompts.json
  organsegbench prompts ref.nii.gz --structure liver --slices extent --jitter-mm 2 --seed 7 --out p.json
  organsegbench segment ct.nii.gz --model medsam --prompts liver_prompts.json --out medsam_liver.nii.gz"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prompts`` sub-command."""
    p = subparsers.add_parser(
        "prompts", help="derive box prompts from a reference mask (recorded protocol) for `segment --prompts`",
        description=textwrap.fill(
            "Derive box prompts from a reference segmentation, step by step: binarise (the structure's label, or "
            "> threshold for picture masks), one box per slice or per connected component, margin in mm, seeded "
            "jitter in mm, and the slices to prompt (gt: slices with reference; extent: every slice of the 3D "
            "extent, so false positives on slices without reference count; box3d: the 3D box on every slice; "
            "key: the largest slice, for video propagation). The protocol and the reference's sha256 are written "
            "into the prompt file and travel into the provenance of every result made from it.", 100)
        + "\n\n" + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", type=Path, help="reference label map or mask (NIfTI, NRRD, DICOM SEG, PNG …)")
    p.add_argument("--structure", help="structure to prompt (e.g. liver); needed when the reference holds several")
    p.add_argument("--vocabulary", help="label vocabulary naming the values of a reference without names (e.g. total)")
    add_protocol_arguments(p)
    p.add_argument("--out", required=True, type=Path, help="prompt file to write (JSON)")
    p.set_defaults(func=run)


def add_protocol_arguments(p: argparse.ArgumentParser, seed: bool = True) -> None:
    """The prompt-protocol options (also used by ``segment-cohort``, whose ``--seed`` comes with the model's)."""
    p.add_argument("--boxes", choices=["per_slice", "per_component"], default="per_slice",
                   help="one box around a slice's foreground, or one per 2D connected component (default per_slice)")
    p.add_argument("--min-component-voxels", type=int, default=1, metavar="N",
                   help="per_component: drop components smaller than N voxels (default 1)")
    p.add_argument("--margin-mm", type=float, default=0.0, help="grow each box by this on every side (default 0)")
    p.add_argument("--jitter-mm", type=float, default=0.0,
                   help="move each box edge by a uniform offset in [-J, +J] mm (default 0)")
    if seed:
        p.add_argument("--seed", type=int, default=0, help="seed of the jitter (default 0)")
    p.add_argument("--slices", choices=["gt", "extent", "box3d", "key"], default="gt",
                   help="which slices get a box (default gt)")


def protocol_from_args(args: argparse.Namespace, label: int | None = None):
    """The :class:`~organsegbench.prompts.PromptProtocol` the options describe."""
    from organsegbench.prompts import PromptProtocol

    return PromptProtocol(label=label, threshold=0.0, boxes=args.boxes, margin_mm=args.margin_mm,
                          jitter_mm=args.jitter_mm, seed=args.seed, slices=args.slices,
                          min_component_voxels=args.min_component_voxels)


def run(args: argparse.Namespace) -> int:
    """Read the reference, derive the prompts, write the prompt file, print what was derived."""
    from organsegbench.download import sha256_file
    from organsegbench.prompts import prompts_from_mask
    from organsegbench.surfaces.inputs import read_mask_file, select_label

    image, labels = read_mask_file(args.reference, args.vocabulary, args.structure)
    value = select_label(labels, args.structure, str(args.reference), consequence="no prompt can be derived")
    protocol = protocol_from_args(args, value)
    name = args.structure or (labels.get(value) if value is not None else None)
    prompts = prompts_from_mask(image.array, image.spacing_zyx, protocol, name=name)
    prompts.protocol["reference"] = {"path": str(args.reference), "sha256": sha256_file(args.reference),
                                     "label": value, "structure": name}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    prompts.save(args.out)
    rec = prompts.protocol
    print(f"{rec['n_boxes']} boxes on {rec['n_slices']} slices of {args.reference.name} "  # noqa: T201
          f"({name or 'foreground'}, label {value}); {rec['n_slices_without_reference']} prompted slices have no "
          f"reference; protocol: {args.boxes}, margin {args.margin_mm:g} mm, jitter {args.jitter_mm:g} mm "
          f"(seed {args.seed}), slices {args.slices}")
    print(f"written to {args.out}")  # noqa: T201
    return 0
