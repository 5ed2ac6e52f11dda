"""Background process runner: live output, progress parsing, blocking mode, and cancel killing the whole tree."""

from __future__ import annotations

import sys
import textwrap
import time

import psutil
import pytest

from organsegbench import runner
from organsegbench.runner import BackgroundProcess, parse_progress, progress_line


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # exited, not yet reaped by init
    except psutil.NoSuchProcess:
        return True


def test_parse_progress_tagged_and_tqdm_lines() -> None:
    assert parse_progress(progress_line(0.25, "predicting")) == runner.ProgressEvent(0.25, "predicting")
    assert parse_progress("ORGANSEGBENCH_PROGRESS 7 done").fraction == 1.0  # clamped to 0..1
    ev = parse_progress(" 45%|####      | 9/20 [00:01<00:02]")
    assert ev is not None and ev.fraction == pytest.approx(0.45)
    assert parse_progress("resampling to 1.5 mm") is None
    assert parse_progress("ORGANSEGBENCH_PROGRESS notanumber") is None


def test_engine_command_and_environment_make_the_engine_importable() -> None:
    cmd = runner.engine_command("info", "a b.nii.gz")
    assert cmd[1:] == ["-m", "organsegbench", "info", "a b.nii.gz"]
    env = runner.engine_environment({"PYTHONPATH": "/elsewhere"})
    first = env["PYTHONPATH"].split(runner.os.pathsep)[0]
    assert (runner.Path(first) / "organsegbench" / "runner.py").is_file()
    assert env["PYTHONPATH"].endswith("/elsewhere") and env["PYTHONUNBUFFERED"] == "1"


def test_blocking_run_streams_lines_and_progress() -> None:
    code = "from organsegbench.runner import progress_line as p\nprint('hello')\nprint(p(0.5, 'half'))\n"
    seen: list[str] = []
    proc = BackgroundProcess([sys.executable, "-c", code], env=runner.engine_environment())
    result = proc.run_blocking(on_line=seen.append)
    assert result.ok and result.returncode == 0
    assert seen[0] == "hello" and proc.progress == runner.ProgressEvent(0.5, "half")
    assert result.log == seen


def test_failing_child_reports_its_exit_status_and_stderr() -> None:
    proc = BackgroundProcess([sys.executable, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"])
    result = proc.run_blocking()
    assert result.returncode == 3 and not result.ok and "boom" in result.log


CHILD = textwrap.dedent("""
    import subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("PIDS", grandchild.pid, flush=True)
    time.sleep(600)
""")


def test_cancel_kills_the_whole_process_tree() -> None:
    proc = BackgroundProcess([sys.executable, "-c", CHILD])
    proc.start()
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not any(line.startswith("PIDS") for line in lines):
        assert time.monotonic() < deadline, f"child never started: {lines}"
        lines += proc.poll()
        time.sleep(0.05)
    grandchild = int(next(line for line in lines if line.startswith("PIDS")).split()[1])
    child = proc.pid
    assert not _gone(child) and not _gone(grandchild)
    proc.cancel(grace_s=2.0)
    assert proc.cancelled
    assert _gone(child), "the child survived cancel"
    for _ in range(50):  # the grandchild may take a moment to be reaped after SIGTERM/SIGKILL
        if _gone(grandchild):
            break
        time.sleep(0.1)
    assert _gone(grandchild), "the grandchild survived cancel (process tree not killed)"
    result = proc.result()
    assert result.cancelled and not result.ok


def test_blocking_timeout_cancels() -> None:
    proc = BackgroundProcess([sys.executable, "-c", "import time; print('start', flush=True); time.sleep(600)"])
    result = proc.run_blocking(timeout_s=1.0)
    assert result.cancelled and result.returncode != 0 and "start" in result.log


def test_start_twice_and_empty_command_are_errors() -> None:
    with pytest.raises(ValueError, match="empty command"):
        BackgroundProcess([])
    proc = BackgroundProcess([sys.executable, "-c", "pass"])
    proc.start()
    with pytest.raises(RuntimeError, match="already started"):
        proc.start()
    assert proc.wait(timeout=60) == 0
