"""Error messages: unknown names list what is known, even when nothing looks alike."""

from __future__ import annotations

from organsegbench.errors import unknown_name


def test_unknown_name_with_many_choices_and_no_close_match_shows_some_choices():
    choices = [f"organ_{i:02d}" for i in range(41)]
    err = unknown_name("structure", "brain", choices)
    assert err.message == "unknown structure 'brain'"
    assert "41 structures are known: organ_00, organ_01" in err.hint and "--help" not in err.hint


def test_unknown_name_lists_close_matches_first():
    assert unknown_name("structure", "livr", ["liver", "spleen"]).hint == "did you mean: liver?"
