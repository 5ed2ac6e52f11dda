"""``organsegbench serve --model NAME``: a persistent model worker answering JSON-line requests on stdin."""

from __future__ import annotations

import argparse
import sys

from organsegbench.cli.segment import add_model_arguments, build_model


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command."""
    from organsegbench import serve

    p = subparsers.add_parser(
        "serve", help="keep one model loaded and answer segment requests (JSON lines on stdin; for interactive "
                      "prompting, e.g. from the Slicer module)",
        description=serve.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until end of input or a shutdown request."""
    from organsegbench.serve import SegmentServer

    return SegmentServer(build_model(args)).serve(sys.stdin, sys.stdout)
