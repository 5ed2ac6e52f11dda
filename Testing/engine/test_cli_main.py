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
