"""The command-line entry point: logging that reaches the user, exit codes."""

from __future__ import annotations

import subprocess
import sys

LOGS = """
import logging, sys
from organsegbench.cli import main
rc = main(sys.argv[1:])
logging.getLogger("numexpr.utils").info("THIRD-PARTY-INFO")
logging.getLogger("organsegbench.surfaces").info("ENGINE-INFO")
logging.getLogger("organsegbench.surfaces").debug("ENGINE-DEBUG")
"""


def _stderr(*args: str) -> str:
    done = subprocess.run([sys.executable, "-c", LOGS, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_engine_info_is_shown_and_third_party_info_is_not():
    err = _stderr("labels")
    assert "ENGINE-INFO" in err and "THIRD-PARTY-INFO" not in err and "ENGINE-DEBUG" not in err


def test_verbose_shows_engine_debug():
    assert "ENGINE-DEBUG" in _stderr("-v", "labels")


CLOSED_PIPE = """
import os, sys
from organsegbench.cli import main
r, w = os.pipe()
os.close(r)  # the reader is gone, as after `organsegbench ... | head -1`
os.dup2(w, sys.stdout.fileno())
sys.exit(main(["labels", "total", "--format", "json"]))
"""


def test_output_into_a_closed_pipe_ends_quietly():
    done = subprocess.run([sys.executable, "-c", CLOSED_PIPE], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 1


def test_every_command_help_fits_a_terminal(monkeypatch):
    from organsegbench.cli import build_parser

    monkeypatch.setenv("COLUMNS", "100")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in sub.choices.items():
        long = [line for line in command.format_help().splitlines() if len(line) > 120]
        assert not long, f"`organsegbench {name} --help` has lines over 120 characters: {long}"
