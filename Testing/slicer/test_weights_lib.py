"""Weights panel logic: per-model checkpoint status from the catalog and cache, download through the project CLI
in a background process (unknown names fail fast with the close matches)."""

from __future__ import annotations

import pytest


def test_weights_rows_report_absent_checkpoints_in_an_empty_cache(isolated_cache) -> None:
    from OrganSegBenchLib.weights import describe_model, model_rows, weights_rows

    rows = {r["name"]: r for r in model_rows()}
    assert "sam" in rows and "totalsegmentator" in rows
    assert "prompts" in describe_model(rows["sam"])
    sam = weights_rows("sam")
    assert sam and all(not r["present"] for r in sam)
    assert all(r["path"].startswith(str(isolated_cache)) and r["how_to_get"] for r in sam)


def test_download_of_unknown_weights_fails_with_close_matches(isolated_cache) -> None:
    from OrganSegBenchLib.weights import download_process, weights_rows

    name = weights_rows("sam")[0]["name"]
    proc = download_process(name + "x")
    assert proc.command[1:5] == ["-m", "organsegbench", "weights", "download"]
    result = proc.run_blocking(timeout_s=120)
    assert result.returncode == 2 and not result.cancelled
    assert any(name in line for line in result.log), result.log


def test_unknown_model_in_weights_rows_lists_close_names() -> None:
    from OrganSegBenchLib.weights import weights_rows

    from organsegbench.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="sam"):
        weights_rows("samm")
