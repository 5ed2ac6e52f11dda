"""Interactive prompting: one persistent ``organsegbench serve`` worker per model, kept while the user draws boxes.

Each Apply would otherwise start a process, import torch, load the weights, write and read the volume and encode
its slices again (seconds). The worker keeps the model and the image loaded and the slice embeddings cached, so a
new box costs a decode. The volume is written for the worker only when it changed (fingerprint: node ID and the
image data's modification time). Replies are picked up by :meth:`ModelServer.poll` from the widget's timer; the
widget calls :meth:`ModelServer.finish` for each to import the result. Cancel kills the worker (the next Apply starts
a new one); the module's cleanup calls :meth:`ModelServer.stop`.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import tempfile
from pathlib import Path

from OrganSegBenchLib.nodes import LogFn, image_from_volume_node
from OrganSegBenchLib.segment_run import SegmentRequest, import_result, request_prompts

logger = logging.getLogger(__name__)


class ModelServer:
    """A persistent model worker (see the module docstring).

    Args:
        model: registry name.
        weights: weights catalog name or file (``None``: the model's default).
        device: ``cpu``, ``cuda`` … (``None``: the adapter's choice).
        log: receives the worker's log lines and this class's messages.
        python: interpreter running the engine (default: Slicer's own).
    """

    def __init__(self, model: str, weights: str | None = None, device: str | None = None, log: LogFn | None = None,
                 python: str | None = None) -> None:
        self.key = (model, weights, device)
        self.log = log or logger.info
        self.python = python
        self.work_dir = Path(tempfile.mkdtemp(prefix="organsegbench_server_"))
        self.process = None
        self.pending: dict[str, tuple[SegmentRequest, Path]] = {}
        self._ids = itertools.count(1)
        self._volumes: dict[str, tuple[tuple, Path]] = {}  # node ID -> (fingerprint, file)
        self.progress: float | None = None

    def command(self) -> list[str]:
        """The worker's command line (``python -m organsegbench serve --model …``)."""
        from organsegbench.runner import python_executable

        model, weights, device = self.key
        cmd = [self.python or python_executable(), "-m", "organsegbench", "serve", "--model", model]
        if weights:
            cmd += ["--weights", weights]
        if device:
            cmd += ["--device", device]
        return cmd

    def start(self, command: list[str] | None = None) -> None:
        """Start the worker (``command`` replaces :meth:`command`'s, e.g. in tests)."""
        from organsegbench.runner import BackgroundProcess

        self.process = BackgroundProcess(command or self.command(), cwd=self.work_dir, interactive=True)
        self.process.start()
        self.log(f"starting a {self.key[0]} worker (kept loaded for the next prompts)")

    def is_running(self) -> bool:
        return bool(self.process and self.process.is_running())

    def _volume_file(self, volume_node) -> Path:
        """The volume as a file for the worker, written again only when the node's image data changed."""
        from organsegbench.io import write_image

        image_data = volume_node.GetImageData()
        fingerprint = (volume_node.GetID(), image_data.GetMTime() if image_data else 0,
                       volume_node.GetMTime())
        known = self._volumes.get(volume_node.GetID())
        if known and known[0] == fingerprint and known[1].exists():
            return known[1]
        path = self.work_dir / f"volume_{len(self._volumes)}_{next(self._ids)}.nii.gz"
        write_image(image_from_volume_node(volume_node), path)
        if known:
            known[1].unlink(missing_ok=True)
        self._volumes[volume_node.GetID()] = (fingerprint, path)
        return path

    def submit(self, request: SegmentRequest) -> str:
        """Send one segment request; returns its id. Starts the worker first when it is not running."""
        from organsegbench.errors import OrganSegBenchError

        if request.volume_node is None:
            raise OrganSegBenchError("no input volume selected", "choose the volume to segment")
        if request.prompt == "automatic":
            raise OrganSegBenchError("automatic models run once per volume: a kept-loaded worker does not help",
                                     "untick 'keep model loaded' for automatic models")
        if not self.is_running():
            self.start()
        prompts, slice_range = request_prompts(request, self.log)
        rid = str(next(self._ids))
        out = self.work_dir / f"result_{rid}.nii.gz"
        self.process.send(json.dumps({
            "id": rid, "op": "segment", "image": str(self._volume_file(request.volume_node)),
            "prompts": prompts.to_dict() if prompts is not None else None, "out": str(out),
            "output": "volume" if slice_range is not None else "prompted",
            "slice_range": list(slice_range) if slice_range is not None else None}))
        self.pending[rid] = (request, out)
        return rid

    def poll(self) -> list[tuple[SegmentRequest, Path, dict]]:
        """Replies that arrived (non-blocking), as ``(request, output file, reply)``; log lines go to the log."""
        from organsegbench.runner import PROGRESS_TAG
        from organsegbench.serve import parse_reply

        done = []
        if self.process is None:
            return done
        for line in self.process.poll():
            reply = parse_reply(line)
            if reply is None:
                if line.strip() and not line.startswith(PROGRESS_TAG):
                    self.log(line)
                continue
            if reply.get("ready"):  # the worker is up; the model loads with the first request
                continue
            entry = self.pending.pop(str(reply.get("id")), None)
            if entry is not None:
                done.append((entry[0], entry[1], reply))
        p = self.process.progress
        self.progress = p.fraction if p else None
        if not self.process.is_running() and self.pending:
            for rid, (request, out) in list(self.pending.items()):  # the worker died: say so for each request
                tail = [ln for ln in self.process.log if ln.strip()][-6:]
                done.append((request, out, {"ok": False, "id": rid, "error": "the model worker stopped:\n"
                                            + "\n".join(tail), "hint": "see the log; Apply starts a new one"}))
            self.pending.clear()
        return done

    def finish(self, request: SegmentRequest, out: Path, reply: dict, name: str | None = None):
        """Import a successful reply's result as a segmentation node; raise the reply's error otherwise."""
        from organsegbench.errors import OrganSegBenchError

        try:
            if not reply.get("ok"):
                raise OrganSegBenchError(str(reply.get("error")), reply.get("hint"))
            seconds = reply.get("seconds")
            cache = reply.get("embedding_cache") or {}
            self.log(f"{request.model}: {seconds} s in the worker; slices encoded "
                     f"{cache.get('slices_encoded', '?')}, reused {cache.get('slices_from_disk', 0)} from disk")
            return import_result(out, request.volume_node,
                                 name or f"{request.volume_node.GetName()} {request.model}", self.log)
        finally:
            from organsegbench.io.segmentation import sidecar_path

            for f in (out, out.with_name(out.name + ".provenance.json"), sidecar_path(out)):
                f.unlink(missing_ok=True)

    def cancel(self) -> None:
        """Kill the worker and everything it started (pending requests are dropped)."""
        if self.process is not None:
            self.process.cancel()
            self.log("model worker stopped (cancel)")
        self.pending.clear()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to finish, kill it if it does not, and remove the work folder."""
        if self.process is not None and self.process.is_running():
            try:
                self.process.send(json.dumps({"op": "shutdown"}))
                self.process.wait(timeout=timeout_s)
            except Exception:  # noqa: BLE001 - already gone or stuck: kill it
                self.process.cancel()
        self.pending.clear()
        shutil.rmtree(self.work_dir, ignore_errors=True)
