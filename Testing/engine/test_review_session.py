"""Review session state: verdicts, navigation, JSON + CSV files, resume, and crash safety of the save."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from organsegbench.errors import ConfigError, InputFileError, UnknownNameError
from organsegbench.review import ReviewSession, Verdict, atomic_write_text
from organsegbench.runner import engine_environment

MODELS = ["totalseg_fast", "totalseg", "moose"]
STRUCTURES = ["liver", "spleen", "pancreas"]


def _session(tmp_path: Path, **kw) -> ReviewSession:
    return ReviewSession.open(tmp_path / "review.json", volume="case1", models=MODELS, structures=STRUCTURES, **kw)


def test_verdict_parse_accepts_spellings_and_rejects_unknown() -> None:
    assert Verdict.parse("Needs edit") is Verdict.NEEDS_EDIT
    assert Verdict.parse("needs-edit") is Verdict.NEEDS_EDIT
    with pytest.raises(UnknownNameError, match="acept") as err:
        Verdict.parse("acept")
    assert "accept" in str(err.value)


def test_set_verdict_autosaves_json_and_csv(tmp_path: Path) -> None:
    s = _session(tmp_path, reviewer="dr_a")
    s.set_verdict("spleen", "moose", "reject", note="misses the lower pole")
    data = json.loads((tmp_path / "review.json").read_text())
    entry = next(e for e in data["entries"] if e["structure"] == "spleen" and e["model"] == "moose")
    assert entry["verdict"] == "reject" and entry["note"] == "misses the lower pole" and entry["reviewer"] == "dr_a"
    rows = list(csv.DictReader((tmp_path / "review.csv").open()))
    assert len(rows) == len(MODELS) * len(STRUCTURES)
    assert [r["verdict"] for r in rows if r["structure"] == "spleen" and r["model"] == "moose"] == ["reject"]
    assert s.progress() == (1, 9)


def test_unknown_structure_or_model_lists_close_matches(tmp_path: Path) -> None:
    s = _session(tmp_path)
    with pytest.raises(UnknownNameError, match="splen"):
        s.set_verdict("splen", "moose", "accept")
    with pytest.raises(UnknownNameError, match="mose"):
        s.set_verdict("spleen", "mose", "accept")


def test_navigation_and_next_unreviewed_respect_presence(tmp_path: Path) -> None:
    present = {"liver": MODELS, "spleen": ["moose"], "pancreas": ["totalseg"]}
    s = _session(tmp_path, present=present)
    assert s.current_structure == "liver" and s.progress() == (0, 5)
    for m in MODELS:
        s.set_verdict("liver", m, "accept")
    assert s.next_unreviewed() == "spleen"
    assert s.go(1) == "spleen" and s.go(5) == "pancreas" and s.go(-10) == "liver"
    s.set_verdict("spleen", "moose", "accept")
    s.set_verdict("pancreas", "totalseg", "needs_edit")
    assert s.next_unreviewed() is None and s.progress() == (5, 5)


def test_reopen_resumes_verdicts_position_and_merges_new_models(tmp_path: Path) -> None:
    s = _session(tmp_path)
    s.set_verdict("pancreas", "totalseg", "needs edit", note="tail cut")
    s.go_to("pancreas")
    resumed = ReviewSession.open(tmp_path / "review.json", volume="case1", models=MODELS + ["sam2"],
                                 structures=STRUCTURES + ["kidney_left"])
    assert resumed.current_structure == "pancreas"
    e = resumed.entry("pancreas", "totalseg")
    assert e.verdict is Verdict.NEEDS_EDIT and e.note == "tail cut"
    assert resumed.models[-1] == "sam2" and resumed.entry("kidney_left", "sam2").verdict is Verdict.UNREVIEWED


def test_review_file_of_another_volume_is_refused(tmp_path: Path) -> None:
    _session(tmp_path)
    with pytest.raises(ConfigError, match="belongs to volume 'case1', not 'case2'"):
        ReviewSession.open(tmp_path / "review.json", volume="case2", models=MODELS, structures=STRUCTURES)


def test_corrupt_or_foreign_files_give_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{ half")
    with pytest.raises(InputFileError, match="not valid JSON"):
        ReviewSession.load(bad)
    bad.write_text(json.dumps({"something": 1}))
    with pytest.raises(ConfigError, match="not an OrganSegBench review file"):
        ReviewSession.load(bad)
    with pytest.raises(InputFileError, match="does not exist"):
        ReviewSession.load(tmp_path / "missing.json")


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "x.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two" and sorted(p.name for p in target.parent.iterdir()) == ["x.json"]


CRASHING_WRITER = textwrap.dedent("""
    import os, sys, time
    from organsegbench.review import ReviewSession
    s = ReviewSession.load(sys.argv[1])
    real_fsync = os.fsync
    def stall(fd):
        real_fsync(fd)
        print("MIDSAVE", flush=True)   # temp file written, os.replace not yet done
        time.sleep(600)
    os.fsync = stall
    s.set_verdict("liver", "moose", "reject", note="x" * 2_000_000)   # autosave, killed inside
""")


def test_review_file_survives_a_crash_mid_save_and_resumes(tmp_path: Path) -> None:
    s = _session(tmp_path)
    s.set_verdict("liver", "moose", "accept", note="good")
    s.go_to("spleen")
    before = (tmp_path / "review.json").read_text()
    child = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, str(tmp_path / "review.json")],
                             stdout=subprocess.PIPE, text=True, env=engine_environment())
    try:
        line = child.stdout.readline()
        assert line.strip() == "MIDSAVE", f"writer did not reach the save: {line!r}"
        time.sleep(0.05)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode != 0
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".review.json.")]
    assert leftovers, "the test did not kill the writer mid-save (no temp file left behind)"
    assert (tmp_path / "review.json").read_text() == before  # old file intact and complete
    resumed = ReviewSession.open(tmp_path / "review.json", volume="case1", models=MODELS, structures=STRUCTURES)
    assert resumed.current_structure == "spleen"
    assert resumed.entry("liver", "moose").verdict is Verdict.ACCEPT and resumed.entry("liver", "moose").note == "good"
