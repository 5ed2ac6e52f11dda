"""Child-process entry points for the Slicer module's background work: ``python -m organsegbench.jobs ...``.

Each job prints progress lines (:func:`organsegbench.runner.progress_line`) and log text, writes its output
atomically, and exits 0 on success, 2 on a user error (message + fix on stderr), 1 on a crash. The Slicer module
starts them with :class:`organsegbench.runner.BackgroundProcess` and cancels them by killing the process tree.

Jobs:
    segment           run a registered model on a volume file (optional prompt file / text) -> label map file
    weights-download  download a checkpoint of the weights catalog into the cache (resumable, verified)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from organsegbench.errors import OrganSegBenchError
from organsegbench.runner import progress_line


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the parent process reads stdout line by line


def segment(args: argparse.Namespace) -> int:
    """Run ``args.model`` on ``args.input`` and write the label map (+ provenance sidecar) to ``args.output``."""
    from organsegbench.io import read_image
    from organsegbench.models import registry

    _say(progress_line(0.0, f"reading {args.input}"))
    image = read_image(args.input)
    prompts = None
    if args.prompts:
        from organsegbench.prompts.types import PromptSet

        prompts = PromptSet.load(args.prompts)
    if args.text:
        from organsegbench.prompts.types import PromptSet

        prompts = prompts or PromptSet(image_shape=image.shape)
        prompts.text.extend(args.text)
    kwargs = {"device": args.device} if args.device else {}
    if args.weights:
        kwargs["weights"] = args.weights
    _say(progress_line(0.02, f"loading model {args.model}"))
    model = registry.create(args.model, **kwargs)

    def progress(done: int, total: int) -> None:
        _say(progress_line(0.05 + 0.9 * done / max(total, 1), f"{done}/{total}"))

    result = model.segment(image, prompts, output=args.mode, progress=progress)
    result.write(args.output)
    _say(progress_line(1.0, f"wrote {args.output}"))
    return 0


def weights_download(args: argparse.Namespace) -> int:
    """Download checkpoint ``args.name`` (progress bar on stderr, parsed by the parent)."""
    from organsegbench.models import weights

    _say(progress_line(0.0, f"downloading weights {args.name}"))
    path = weights.download_weights(args.name, progress=True, allow_unverified=args.allow_unverified)
    _say(progress_line(1.0, f"weights {args.name} ready at {path}"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m organsegbench.jobs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="job", required=True)
    s = sub.add_parser("segment", help="run a model on a volume file")
    s.add_argument("--model", required=True, help="registry name (see organsegbench.models.registry.names())")
    s.add_argument("--input", required=True, help="volume file (NRRD, NIfTI)")
    s.add_argument("--output", required=True, help="label map file to write (.nii.gz, .nrrd)")
    s.add_argument("--prompts", help="prompt file (JSON written by PromptSet.save)")
    s.add_argument("--text", action="append", default=[], help="text prompt (repeatable)")
    s.add_argument("--weights", help="weights catalog name (default: the model's first)")
    s.add_argument("--device", help="cpu, cuda, cuda:1 (default: the adapter's choice)")
    s.add_argument("--mode", choices=("prompted", "volume"), default="prompted",
                   help="prompted: only the prompted slices; volume: 3D output (box applied to its slice range)")
    s.set_defaults(func=segment)
    w = sub.add_parser("weights-download", help="download a checkpoint into the cache")
    w.add_argument("name", help="weights catalog name")
    w.add_argument("--allow-unverified", action="store_true", help="accept weights without a published sha256")
    w.set_defaults(func=weights_download)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OrganSegBenchError as exc:
        print(f"error: {exc.message}", file=sys.stderr, flush=True)  # noqa: T201
        if exc.hint:
            print(f"fix: {exc.hint}", file=sys.stderr, flush=True)  # noqa: T201
        return 2


if __name__ == "__main__":
    sys.exit(main())
