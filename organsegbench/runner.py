"""Background processes for long work (model runs, downloads) without Qt: start, stream output, cancel the tree.

The Slicer module drives a :class:`BackgroundProcess` from a ``qt.QTimer`` on the main thread (``poll()`` never
blocks); scripts and tests use :meth:`BackgroundProcess.run_blocking`. The child runs in its own session/process
group, so :meth:`BackgroundProcess.cancel` ends it *and everything it started* (worker pools, nnU-Net
predictors), which a plain ``Popen.kill()`` does not.

Progress protocol: a child line ``ORGANSEGBENCH_PROGRESS <fraction 0..1> <message>`` and tqdm-style
``" 45%|####"`` lines are parsed into :class:`ProgressEvent`; everything else is log text.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

PROGRESS_TAG = "ORGANSEGBENCH_PROGRESS"
_TQDM_RE = re.compile(r"(?<!\d)(\d{1,3})%\|")


@dataclass(frozen=True)
class ProgressEvent:
    """Progress parsed from one output line: ``fraction`` in 0..1 and an optional message."""

    fraction: float
    message: str = ""


def parse_progress(line: str) -> ProgressEvent | None:
    """Parse a progress line (tagged protocol or tqdm bar); ``None`` for ordinary log text."""
    text = line.strip()
    if text.startswith(PROGRESS_TAG):
        parts = text[len(PROGRESS_TAG):].strip().split(maxsplit=1)
        try:
            fraction = float(parts[0])
        except (IndexError, ValueError):
            return None
        return ProgressEvent(min(1.0, max(0.0, fraction)), parts[1] if len(parts) > 1 else "")
    hits = _TQDM_RE.findall(text)
    if hits:
        return ProgressEvent(min(100, int(hits[-1])) / 100.0, text)
    return None


def progress_line(fraction: float, message: str = "") -> str:
    """The line a child prints to report progress (``fraction`` in 0..1)."""
    return f"{PROGRESS_TAG} {fraction:.4f} {message}".rstrip()


def python_executable() -> str:
    """The interpreter for child processes: Slicer's ``PythonSlicer`` when present, else this interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


def engine_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a child running ``python -m organsegbench``: the engine's folder is put first on
    ``PYTHONPATH`` (inside Slicer the engine lives beside the scripted modules, not in site-packages) and
    output is unbuffered so the log is live."""
    env = dict(os.environ if base is None else base)
    engine_parent = str(Path(__file__).resolve().parents[1])
    paths = [engine_parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != engine_parent]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def engine_command(subcommand: str, *args: str | os.PathLike) -> list[str]:
    """``[python, -m, organsegbench, subcommand, *args]`` with every argument as a string."""
    return [python_executable(), "-m", "organsegbench", subcommand, *[os.fspath(a) for a in args]]


@dataclass
class RunResult:
    """Outcome of a finished process: exit code, whether it was cancelled, the full log."""

    returncode: int
    cancelled: bool
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the process exited with status 0 and was not cancelled."""
        return self.returncode == 0 and not self.cancelled


class BackgroundProcess:
    """A child process whose merged stdout/stderr is read by a thread into a queue.

    Args:
        command: the argument list (no shell).
        env: environment (default: :func:`engine_environment`).
        cwd: working directory.
        interactive: keep the child's stdin open for :meth:`send` (a persistent worker); otherwise it reads
            nothing.
    """

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None,
                 cwd: str | os.PathLike | None = None, interactive: bool = False) -> None:
        if not command:
            raise ValueError("empty command")
        self.command = [os.fspath(c) for c in command]
        self.env = dict(env) if env is not None else engine_environment()
        self.cwd = cwd
        self.interactive = interactive
        self.cancelled = False
        self.log: list[str] = []
        self.progress: ProgressEvent | None = None
        self._proc: subprocess.Popen | None = None
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._reader_done = threading.Event()

    # ------------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the child in a new session (POSIX) or process group (Windows) and the reader thread."""
        if self._proc is not None:
            raise RuntimeError("process already started")
        kwargs: dict = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True
        logger.info("starting: %s", " ".join(self.command))
        self._proc = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if self.interactive else subprocess.DEVNULL,
            env=self.env, cwd=self.cwd, text=True, encoding="utf-8", errors="replace", bufsize=1, **kwargs,
        )
        self._reader = threading.Thread(target=self._read, name="organsegbench-reader", daemon=True)
        self._reader.start()

    def send(self, line: str) -> None:
        """Write one line to the child's stdin (``interactive`` processes only).

        Raises:
            RuntimeError: the process is not interactive, not started, or has ended.
        """
        if not self.interactive or self._proc is None or self._proc.stdin is None:
            raise RuntimeError("send() needs a started interactive process")
        if self._proc.poll() is not None:
            raise RuntimeError(f"the process has ended (exit status {self._proc.returncode})")
        self._proc.stdin.write(line.rstrip("\n") + "\n")
        self._proc.stdin.flush()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            for line in self._proc.stdout:
                self._queue.put(line.rstrip("\r\n"))
        finally:
            self._queue.put(None)
            self._reader_done.set()

    @property
    def pid(self) -> int | None:
        """Process id of the child (``None`` before :meth:`start`)."""
        return self._proc.pid if self._proc else None

    def is_running(self) -> bool:
        """True while the child has not exited or its output has not been read to the end."""
        if self._proc is None:
            return False
        return self._proc.poll() is None or not self._reader_done.is_set() or not self._queue.empty()

    @property
    def returncode(self) -> int | None:
        """Exit status once finished (negative signal number on POSIX when killed)."""
        return self._proc.poll() if self._proc else None

    def poll(self, max_lines: int = 1000) -> list[str]:
        """New output lines since the last call, without blocking (for a GUI timer); updates :attr:`progress`."""
        lines: list[str] = []
        while len(lines) < max_lines:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                continue
            lines.append(item)
            event = parse_progress(item)
            if event is not None:
                self.progress = event
        self.log.extend(lines)
        return lines

    def wait(self, timeout: float | None = None) -> int:
        """Block until the child exits and its output is read; return the exit status."""
        if self._proc is None:
            raise RuntimeError("process not started")
        code = self._proc.wait(timeout=timeout)
        self._reader_done.wait(timeout=timeout)
        return code

    # ------------------------------------------------------------------------------------------------ cancel
    def cancel(self, grace_s: float = 3.0) -> None:
        """Stop the child and every descendant: terminate, wait up to ``grace_s`` seconds, then kill."""
        if self._proc is None:
            return
        if self._proc.poll() is not None and not self._descendants():
            return  # finished on its own, nothing left to stop
        self.cancelled = True
        kill_process_tree(self._proc.pid, grace_s=grace_s, new_session=os.name != "nt", popen=self._proc)
        self._reader_done.wait(timeout=grace_s)  # the pipe closes once the whole tree is gone
        self.poll(max_lines=10**9)  # keep the last lines in the log; is_running() is False from here on
        logger.info("cancelled: %s", " ".join(self.command))

    def _descendants(self) -> list:
        try:
            import psutil

            return psutil.Process(self._proc.pid).children(recursive=True) if self._proc else []
        except Exception:
            return []

    def result(self) -> RunResult:
        """The :class:`RunResult` of a finished process (drains remaining output)."""
        self.poll(max_lines=10**9)
        code = self.returncode
        return RunResult(returncode=-1 if code is None else code, cancelled=self.cancelled, log=list(self.log))

    # ------------------------------------------------------------------------------------------------ blocking
    def run_blocking(self, on_line: Callable[[str], None] | None = None, timeout_s: float | None = None,
                     poll_interval_s: float = 0.1) -> RunResult:
        """Start (if needed), stream lines to ``on_line`` and wait; cancel the tree after ``timeout_s`` seconds."""
        import time

        if self._proc is None:
            self.start()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.is_running():
            for line in self.poll():
                if on_line:
                    on_line(line)
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                break
            self._reader_done.wait(poll_interval_s)
        for line in self.poll(max_lines=10**9):
            if on_line:
                on_line(line)
        return self.result()


def kill_process_tree(pid: int, grace_s: float = 3.0, new_session: bool = True,
                      popen: subprocess.Popen | None = None) -> None:
    """Terminate ``pid`` and all its descendants (found with psutil, plus its process group when it leads a
    session); processes still alive after ``grace_s`` seconds are killed.

    When ``popen`` (the ``Popen`` of ``pid``) is given, the root is waited through it, so that its exit status
    stays available to the caller (psutil would reap it and ``Popen`` would then report 0).
    """
    import psutil

    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True)
    except psutil.NoSuchProcess:
        root, procs = None, []
    if popen is None and root is not None:
        procs.append(root)
    group = new_session and os.name != "nt"

    def signal_all(sig: int) -> None:
        if group:
            try:
                os.killpg(pid, sig)  # the group also holds descendants that were re-parented
            except (ProcessLookupError, PermissionError):
                pass
        if popen is not None and popen.poll() is None:
            popen.send_signal(sig)
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass

    signal_all(signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    root_alive = False
    if popen is not None:
        try:
            popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            root_alive = True
    if alive or root_alive:
        procs = alive
        signal_all(getattr(signal, "SIGKILL", signal.SIGTERM))  # Windows has no SIGKILL
        psutil.wait_procs(alive, timeout=grace_s)
        if popen is not None:
            popen.wait(timeout=grace_s)
