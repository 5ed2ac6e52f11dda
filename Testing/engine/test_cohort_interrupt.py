"""An interrupted local-process evaluation stops its workers instead of waiting for them (Ctrl-C never hangs)."""

from __future__ import annotations

import time

import psutil

from organsegbench.cohort.runner import _local_pool


def _slow_or_fast(case: str, options: object) -> dict:
    if case == "slow":
        time.sleep(120)
    return {"case": case}


def test_closing_the_pool_early_terminates_busy_workers() -> None:
    gen = _local_pool(_slow_or_fast, ["fast", "slow", "slow"], None, 2)  # type: ignore[arg-type]
    assert next(gen) == {"case": "fast"}
    children = psutil.Process().children(recursive=True)
    assert children, "the pool should have started worker processes"
    gen.close()  # what a KeyboardInterrupt in the consumer does to the generator
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"workers still running after the run was interrupted: {[p.pid for p in alive]}"


def test_a_complete_run_returns_every_result() -> None:
    got = sorted(r["case"] for r in _local_pool(_slow_or_fast, ["a", "b", "c"], None, 2))  # type: ignore[arg-type]
    assert got == ["a", "b", "c"]
