"""Command line interface ``organsegbench``.

Each sub-command lives in its own module in this package and exposes ``register(subparsers)``, which adds a
parser whose ``func`` default takes the parsed ``argparse.Namespace`` and returns an exit code. Modules are
discovered automatically, so adding a command never touches a shared file. Errors derived from
:class:`~organsegbench.errors.OrganSegBenchError` are printed as ``error: …`` plus ``fix: …`` with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from organsegbench import __version__
from organsegbench.errors import OrganSegBenchError

log = logging.getLogger("organsegbench")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every discovered sub-command."""
    parser = argparse.ArgumentParser(
        prog="organsegbench",
        description="Run, benchmark and review organ segmentations from foundation models.",
        epilog="Run `organsegbench COMMAND --help` for a command's options. Start with `organsegbench demo`.",
    )
    parser.add_argument("--version", action="version", version=f"organsegbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # the engine's own messages at INFO (DEBUG with -v); other libraries' INFO chatter (e.g. numexpr) stays hidden
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except OrganSegBenchError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        if exc.hint:
            sys.stderr.write(f"  fix: {exc.hint}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("cancelled\n")
        return 130
    except BrokenPipeError:  # the reader went away (`organsegbench ... | head`): stop quietly, as Python's docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
