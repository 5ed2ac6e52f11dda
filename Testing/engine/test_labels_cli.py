"""``organsegbench labels`` command."""

from __future__ import annotations

import csv
import io
import json

from organsegbench.cli import main
from organsegbench.labels import get_vocabulary


def test_lists_vocabularies(capsys):
    assert main(["labels"]) == 0
    out = capsys.readouterr().out
    for name in ("total", "total_mr", "total_v1", "moose_clin_ct_organs", "organs"):
        assert name in out


def test_shows_vocabulary_as_csv(capsys):
    assert main(["labels", "total_v1", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(get_vocabulary("total_v1"))
    myo = next(r for r in rows if r["structure"] == "heart_myocardium")
    assert myo["harmonised"] == "heart" and "74281007" in myo["snomed"]


def test_resolve_and_match(capsys):
    assert main(["labels", "--resolve", "left kidney", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["structure"] == "kidney_left" and "Left" in row["snomed"]
    assert main(["labels", "--match", "total", "moose_clin_ct_organs", "--format", "json"]) == 0
    rows = {r["structure"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["thyroid_gland"]["count"] == 2
    assert rows["aorta"]["moose_clin_ct_organs"] == "-"


def test_unknown_name_exits_2_with_fix(capsys):
    assert main(["labels", "--resolve", "livr"]) == 2
    err = capsys.readouterr().err
    assert "unknown structure 'livr'" in err and "fix:" in err and "liver" in err
