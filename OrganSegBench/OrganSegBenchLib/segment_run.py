"""A model run on a volume node in a background process, and its result imported as segments.

The widget calls :meth:`SegmentJob.start`, then :meth:`SegmentJob.poll` from a ``qt.QTimer`` (never blocks),
:meth:`SegmentJob.cancel` from the Cancel button (kills the whole process tree) and :meth:`SegmentJob.finish`
when the process has ended. Scripts and tests use :meth:`SegmentJob.run_blocking`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from OrganSegBenchLib.nodes import LogFn, image_from_volume_node

logger = logging.getLogger(__name__)

PROMPT_KINDS = ("box", "text", "automatic")


@dataclass
class SegmentRequest:
    """What to run.

    Attributes:
        model: registry name (``organsegbench.models.registry.names()``).
        volume_node: the input volume.
        prompt: ``"box"`` (a Markups ROI), ``"text"`` or ``"automatic"``.
        roi_node: the ROI for box prompts.
        text: structure names for text prompts (one per object).
        structure: name given to the prompted object of a box prompt (``None``: "object").
        weights: weights catalog name (``None``: the model's default).
        device: ``cpu``, ``cuda`` … (``None``: the adapter's choice).
        mode: ``prompted`` (prompted slices only) or ``volume`` (3D output).
    """

    model: str
    volume_node: object
    prompt: str = "automatic"
    roi_node: object = None
    text: list[str] = field(default_factory=list)
    structure: str | None = None
    weights: str | None = None
    device: str | None = None
    mode: str = "volume"


def request_prompts(r: SegmentRequest, log: LogFn) -> tuple[object, tuple[int, int] | None]:
    """The request's prompts (a ``PromptSet``; ``None`` for automatic models) and, for 3D output of a box, its
    slice range."""
    from organsegbench.prompts import PromptSet

    if r.prompt == "box":
        from OrganSegBenchLib.prompts import roi_prompt_set, roi_to_voxel_box

        prompts = roi_prompt_set(r.roi_node, r.volume_node, label=1, name=r.structure or "object")
        if prompts.protocol.get("clipped"):
            log(f"ROI {r.roi_node.GetName()!r} extends beyond the volume; the box was clipped to it")
        return prompts, (roi_to_voxel_box(r.roi_node, r.volume_node).k if r.mode == "volume" else None)
    if r.prompt == "text":
        return PromptSet(text=[t.strip() for t in r.text if t.strip()]), None
    return None, None


class SegmentJob:
    """Prepare inputs in a work folder, run the engine job, import the output as a segmentation node."""

    def __init__(self, request: SegmentRequest, work_dir: str | Path | None = None, log: LogFn | None = None,
                 python: str | None = None) -> None:
        from organsegbench.errors import OrganSegBenchError

        if request.prompt not in PROMPT_KINDS:
            raise OrganSegBenchError(f"unknown prompt kind {request.prompt!r}", f"use one of {', '.join(PROMPT_KINDS)}")
        if request.volume_node is None:
            raise OrganSegBenchError("no input volume selected", "choose the volume to segment")
        if request.prompt == "text" and not [t for t in request.text if t.strip()]:
            raise OrganSegBenchError("text prompt is empty", "type one or more structure names, e.g. liver, spleen")
        self.request = request
        self.log = log or logger.info
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="organsegbench_"))
        self.python = python
        self.process = None
        self.output = self.work_dir / "result.nii.gz"

    def command(self) -> list[str]:
        """Write the input volume (and prompt file) into the work folder; return the child's command line, the
        project CLI ``python -m organsegbench segment`` (the same run as on the command line)."""
        from organsegbench.io import write_image
        from organsegbench.runner import python_executable

        r = self.request
        image = image_from_volume_node(r.volume_node)
        input_path = self.work_dir / "input.nii.gz"
        write_image(image, input_path)
        cmd = [self.python or python_executable(), "-m", "organsegbench", "segment", str(input_path),
               "--model", r.model, "--out", str(self.output)]
        prompts, slice_range = request_prompts(r, self.log)
        if prompts is not None and prompts.boxes:
            prompt_path = self.work_dir / "prompts.json"
            prompts.save(prompt_path)
            cmd += ["--prompts", str(prompt_path), "--name", r.structure or "object"]
        elif prompts is not None:
            cmd += ["--text", ",".join(prompts.text)]
        if slice_range is not None:
            cmd += ["--slices", f"{slice_range[0]}:{slice_range[1]}"]
        if r.weights:
            cmd += ["--weights", r.weights]
        if r.device:
            cmd += ["--device", r.device]
        return cmd

    # ------------------------------------------------------------------------------------------------ running
    def start(self, command: list[str] | None = None):
        """Start the background process (``command``: replaces :meth:`command`'s, e.g. a wrapper script);
        returns the :class:`organsegbench.runner.BackgroundProcess`."""
        from organsegbench.runner import BackgroundProcess

        cmd = command or self.command()
        self.log(f"running {self.request.model} on {self.request.volume_node.GetName()!r}")
        self.process = BackgroundProcess(cmd, cwd=self.work_dir)
        self.process.start()
        return self.process

    def poll(self) -> list[str]:
        """New log lines (non-blocking)."""
        return self.process.poll() if self.process else []

    @property
    def progress(self) -> float | None:
        """Last reported progress fraction (0..1), if any."""
        p = self.process.progress if self.process else None
        return p.fraction if p else None

    def is_running(self) -> bool:
        return bool(self.process and self.process.is_running())

    def cancel(self) -> None:
        """Kill the run and everything it started; the work folder is removed."""
        if self.process:
            self.process.cancel()
            self.log("run cancelled")
        self.cleanup()

    def finish(self, name: str | None = None):
        """After the process ended: the result as a new segmentation node on the volume grid.

        Raises OrganSegBenchError with the child's last error lines when the run failed or was cancelled.
        """
        from organsegbench.errors import OrganSegBenchError

        result = self.process.result()
        if result.cancelled:
            raise OrganSegBenchError("the run was cancelled", "start it again when ready")
        if result.returncode != 0 or not self.output.exists():
            tail = [line for line in result.log if line.strip()][-8:]
            raise OrganSegBenchError(f"model {self.request.model!r} failed (exit status {result.returncode}):\n"
                                     + "\n".join(tail), "see the log above; the fix is usually on the 'fix:' line")
        try:
            node = import_result(self.output, self.request.volume_node,
                                 name or f"{self.request.volume_node.GetName()} {self.request.model}", self.log)
        finally:
            self.cleanup()
        return node

    def run_blocking(self, name: str | None = None, timeout_s: float | None = None,
                     command: list[str] | None = None):
        """Run to completion in this thread (batch/scripted use) and return the segmentation node."""
        self.start(command)
        self.process.run_blocking(on_line=self.log, timeout_s=timeout_s)
        return self.finish(name)

    def cleanup(self) -> None:
        """Remove the work folder when this job created it."""
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def import_result(path: str | Path, volume_node, name: str, log: LogFn | None = None):
    """Read a model's label map (names and codes from its ``.segments.json``, else its ``.provenance.json`` label
    names) and add it as named, coded segments."""
    import json

    from organsegbench.io import read_segmentation
    from organsegbench.io.segment_info import segments_from_names
    from OrganSegBenchLib.segments import add_segmentation

    seg = read_segmentation(path)
    side = Path(str(path) + ".provenance.json")
    if side.exists() and all(info.type is None for info in seg.segments.values()):
        labels = {int(k): v for k, v in json.loads(side.read_text()).get("labels", {}).items()}
        seg.segments = segments_from_names({v: labels.get(v, info.name) for v, info in seg.segments.items()})
    return add_segmentation(seg, name, reference_volume_node=volume_node, log=log)
