"""``organsegbench segment IMAGE --model NAME [--box … | --prompts FILE | --text …] --out FILE``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)

DESCRIPTION = """Segment an image with one model and write a label map (+ OUT.provenance.json).

Prompt coordinates are voxel indices of the input array: slice K (array axis 0), column X, row Y; boxes are
inclusive. A 2D box is K,X0,Y0,X1,Y1; a 3D box is K0:K1,X0,Y0,X1,Y1. Repeat --box for several boxes; all boxes of
one run prompt one object unless --box-labels gives each its label value.

Examples:
  organsegbench segment ct.nii.gz --model sam --box 40,100,120,180,200 --out liver.nii.gz
  organsegbench segment ct.nii.gz --model sam --box 40,100,120,180,200 --slices 30:50 --out liver.nii.gz
  organsegbench segment ct.nii.gz --model sam2-video --box 40,100,120,180,200 --out liver.nii.gz
  organsegbench segment ct.nii.gz --model medsam --prompts prompts.json --out masks.nii.gz
  organsegbench segment ct.nii.gz --model totalsegmentator --fast --out total.nii.gz
  organsegbench segment ct.nii.gz --model segvol --text liver,spleen --out organs.nii.gz"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``segment`` sub-command."""
    p = subparsers.add_parser("segment", help="segment an image with a model (SAM, MedSAM, SAM2, TotalSegmentator…)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", help="image file or DICOM folder")
    p.add_argument("--box", action="append", default=[], metavar="K,X0,Y0,X1,Y1",
                   help="box prompt (2D on slice K, or K0:K1,… for a 3D box); repeatable")
    p.add_argument("--box-labels", metavar="L1,L2,…", help="label value of each --box (default: all 1)")
    p.add_argument("--name", help="structure name of the prompted object (recorded, e.g. liver)")
    p.add_argument("--prompts", metavar="FILE",
                   help="prompt file (JSON; `organsegbench prompts REF` derives one from a reference mask)")
    p.add_argument("--text", metavar="NAMES", help="comma-separated structure names for text-prompted models")
    p.add_argument("--slices", metavar="K0:K1", help="slice range for 3D output of a 2D model")
    p.add_argument("--roi", metavar="K0:K1,X0,Y0,X1,Y1",
                   help="run the model on this crop only (voxel indices, inclusive); zero outside")
    add_model_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output label map (.nii.gz, .nrrd)")
    p.set_defaults(func=run)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Which model, which weights, where and how it runs (shared with ``segment-cohort``)."""
    p.add_argument("--model", required=True, help="model name (list them with `organsegbench models`)")
    p.add_argument("--weights", help="catalog name or checkpoint file (default: the model's first catalog entry)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--batch-size", type=int, default=4, help="slices encoded per batch (default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed recorded with the result")
    p.add_argument("--window", metavar="LEVEL,WIDTH",
                   help="intensity window for 2D/video models (default: CT 40,400 HU; other images 0.5-99.5 "
                        "percentiles)")
    p.add_argument("--modality", choices=["CT", "MR", "PET"], help="modality (default: guessed from intensities)")
    p.add_argument("--fast", action="store_true", help="TotalSegmentator: 3 mm model")
    p.add_argument("--roi-subset", metavar="NAMES", help="TotalSegmentator: only these structures")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="SegVol: allow running the Python code shipped in its model folder (recorded)")
    p.add_argument("--trust-checkpoints", action="store_true",
                   help="TotalSegmentator/MOOSE: load checkpoints even when the safety scan flags them (recorded)")
    p.add_argument("--embedding-cache-gb", type=float, default=8.0, metavar="GB",
                   help="SAM family: keep slice embeddings in $ORGANSEGBENCH_CACHE/embeddings so a later run on "
                        "the same slices decodes only; least recently used files go beyond GB (default 8; 0 = off)")


def build_model(args: argparse.Namespace):
    """The model adapter the options of :func:`add_model_arguments` describe (not loaded yet)."""
    from organsegbench.errors import OrganSegBenchError
    from organsegbench.models import registry

    cls = registry.get(args.model)
    options: dict = {}
    if args.window:
        try:
            level, width = (float(v) for v in args.window.split(","))
        except ValueError as exc:
            raise OrganSegBenchError(f"--window {args.window!r} is not LEVEL,WIDTH", "for example --window 40,400") \
                from exc
        if width <= 0:
            raise OrganSegBenchError(f"--window width must be > 0; got {width}")
        options["window"] = (level, width)
    if args.modality:
        options["modality"] = args.modality
    if args.fast:
        options["fast"] = True
    if args.roi_subset:
        options["roi_subset"] = [s.strip() for s in args.roi_subset.split(",") if s.strip()]
    if args.trust_remote_code:
        options["trust_remote_code"] = True
    if args.trust_checkpoints:
        options["trust_checkpoints"] = True
    from organsegbench.models.slicewise import SliceSegmenter

    if issubclass(cls, SliceSegmenter) and args.embedding_cache_gb > 0:
        from organsegbench.config import cache_dir
        from organsegbench.models.embedding_cache import EmbeddingCache

        options["cache"] = EmbeddingCache(disk_dir=cache_dir() / "embeddings",
                                          max_disk_bytes=int(args.embedding_cache_gb * 1024**3))
    return cls(weights=args.weights, device=args.device, batch_size=args.batch_size, seed=args.seed, **options)


def build_prompts(args: argparse.Namespace):
    """PromptSet from --box/--prompts/--text (errors name the bad value)."""
    from organsegbench.errors import OrganSegBenchError
    from organsegbench.prompts import Box2D, PromptSet, parse_box_arg

    ps = PromptSet.load(args.prompts) if args.prompts else PromptSet()
    labels = [1] * len(args.box)
    if args.box_labels:
        try:
            labels = [int(v) for v in args.box_labels.split(",")]
        except ValueError as exc:
            raise OrganSegBenchError(f"--box-labels {args.box_labels!r} must be integers") from exc
        if len(labels) != len(args.box):
            raise OrganSegBenchError(f"--box-labels has {len(labels)} values for {len(args.box)} --box options")
    for text, lab in zip(args.box, labels, strict=True):
        b = parse_box_arg(text, label=lab, name=args.name)
        (ps.boxes if isinstance(b, Box2D) else ps.boxes3d).append(b)
    if args.text is not None:
        names = [t.strip() for t in args.text.split(",")]
        if not any(names):
            raise OrganSegBenchError("--text is empty", "give structure names, e.g. --text liver,spleen")
        if not all(names):
            raise OrganSegBenchError(f"--text {args.text!r} has an empty name", "remove the extra comma")
        ps.text.extend(names)
    if ps.boxes or ps.boxes3d or args.box:
        ps.protocol.setdefault("source", "command line" if args.box else "prompt file")
    return ps


def run(args: argparse.Namespace) -> int:
    """Run the model and write the label map."""
    from organsegbench.errors import OrganSegBenchError
    from organsegbench.io import read_image

    prompts = build_prompts(args)
    slice_range = None
    if args.slices:
        try:
            k0, k1 = (int(v) for v in args.slices.split(":"))
        except ValueError as exc:
            raise OrganSegBenchError(f"--slices {args.slices!r} is not K0:K1") from exc
        slice_range = (k0, k1)
    model = build_model(args)
    image = read_image(args.image)
    output = "volume" if slice_range is not None else "prompted"
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="slice", desc=args.model)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    roi = None
    if args.roi:
        from organsegbench.prompts import Box3D, parse_box_arg

        roi = parse_box_arg(args.roi)
        if not isinstance(roi, Box3D):
            raise OrganSegBenchError(f"--roi {args.roi!r} needs a slice range", "use K0:K1,X0,Y0,X1,Y1")
    try:
        result = model.segment(image, prompts, output=output, slice_range=slice_range, out=Path(args.out),
                               progress=progress, roi=roi)
    finally:
        if bar is not None:
            bar.close()
    voxels = {lab: int((result.labelmap.array == lab).sum()) for lab in result.labels}
    for lab, name in result.labels.items():
        print(f"{lab:4d} {name:32s} {voxels[lab] * result.labelmap.voxel_volume_ml:10.1f} mL")  # noqa: T201
    print(f"wrote {args.out} (+ provenance JSON)")  # noqa: T201
    return 0
