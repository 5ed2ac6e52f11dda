"""The README's two set-up commands stay in sync with CI and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_has_exactly_two_setup_commands():
    blocks = _bash_blocks()
    assert len(blocks) == 2, blocks
    assert "organsegbench demo" in blocks[0]
    assert "pytest" in blocks[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _bash_blocks()[1] in ci


def test_every_cli_command_in_readme_exists():
    from organsegbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    text = (ROOT / "README.md").read_text()
    for cmd in re.findall(r"`organsegbench ([a-z-]+)", text):
        assert cmd in sub.choices, f"README mentions `organsegbench {cmd}`, which does not exist"
