"""A persistent model worker for interactive prompting: one process keeps one model loaded, the last images in
memory and the slice embeddings in its cache, and answers requests given as JSON lines on stdin.

A new box on an already open image then costs a decode (milliseconds on a GPU) instead of a process start, a model
load, an image read and a re-encode (seconds); this is what the Slicer module's "keep the model loaded" option runs
(``organsegbench serve --model sam …``). Requests, one JSON object per line::

    {"id": "1", "op": "segment", "image": "vol.nii.gz", "prompts": {…prompt file format…},
     "output": "prompted", "slice_range": null, "out": "result.nii.gz"}
    {"id": "2", "op": "ping"}
    {"id": "3", "op": "shutdown"}

Each answer is one line ``@organsegbench-reply {json}`` (``ok``, ``id``, and ``out``/``labels``/``seconds``/
``embedding_cache`` or ``error``/``hint``), so it stands out among the log and progress lines that share stdout.
An image is read again only when its file changes (size or modification time). A failing request is answered with
its error and the worker goes on; end of input or ``shutdown`` ends it.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, TextIO

from organsegbench.errors import InputFileError, OrganSegBenchError

log = logging.getLogger(__name__)

REPLY = "@organsegbench-reply "
#: images kept in memory (the volume being prompted, and one more)
MAX_IMAGES = 2


def parse_reply(line: str) -> dict[str, Any] | None:
    """The reply in an output line of the worker, or ``None`` for log and progress lines."""
    if not line.startswith(REPLY):
        return None
    return json.loads(line[len(REPLY):])


class SegmentServer:
    """Answers segment/ping/shutdown requests with one loaded model (see the module docstring).

    Args:
        model: a model adapter (:func:`organsegbench.models.registry.create`); loaded on the first request.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.images: OrderedDict[tuple[str, int, int], Any] = OrderedDict()
        self.image_reads = 0
        self.requests = 0

    def image(self, path: str) -> Any:
        """The image at ``path``, read only when the file changed since it was last read."""
        from organsegbench.io import read_image

        p = Path(path)
        if not p.exists():
            raise InputFileError(f"image {str(p)!r} does not exist", "write the volume before sending the request")
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self.images:
            self.images[key] = read_image(p)
            self.image_reads += 1
            while len(self.images) > MAX_IMAGES:
                self.images.popitem(last=False)
        self.images.move_to_end(key)
        return self.images[key]

    def handle(self, request: dict[str, Any], progress: Any = None) -> dict[str, Any]:
        """Answer one request (never raises for a bad request: the error goes into the reply)."""
        rid = request.get("id")
        op = request.get("op", "segment")
        self.requests += 1
        try:
            if op == "ping":
                return {"ok": True, "id": rid, "model": self.model.capabilities.name,
                        "images_cached": len(self.images), "requests": self.requests}
            if op == "shutdown":
                return {"ok": True, "id": rid, "shutdown": True}
            if op != "segment":
                raise OrganSegBenchError(f"unknown request op {op!r}", "use segment, ping or shutdown")
            return {"ok": True, "id": rid, **self._segment(request, progress)}
        except OrganSegBenchError as exc:
            return {"ok": False, "id": rid, "error": exc.message, "hint": exc.hint}
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the session; the reason is sent
            log.debug("request %s failed", rid, exc_info=True)
            return {"ok": False, "id": rid, "error": f"{type(exc).__name__}: {exc}", "hint": None}

    def _segment(self, request: dict[str, Any], progress: Any) -> dict[str, Any]:
        from organsegbench.prompts import PromptSet

        for key in ("image", "out"):
            if not request.get(key):
                raise OrganSegBenchError(f"segment request lacks {key!r}", f"send {key}: <path> with every request")
        t0 = time.perf_counter()
        image = self.image(request["image"])
        prompts = PromptSet.from_dict(request["prompts"], source="request") if request.get("prompts") else None
        slice_range = tuple(request["slice_range"]) if request.get("slice_range") else None
        result = self.model.segment(image, prompts, output=request.get("output", "prompted"),
                                    slice_range=slice_range, out=Path(request["out"]), progress=progress)
        return {"out": str(request["out"]), "labels": {str(k): v for k, v in result.labels.items()},
                "seconds": round(time.perf_counter() - t0, 4), "image_reads": self.image_reads,
                "embedding_cache": result.provenance.get("notes", {}).get("embedding_cache")}

    def serve(self, stdin: TextIO, stdout: TextIO) -> int:
        """Read requests until end of input or ``shutdown``; write one reply line per request."""
        from organsegbench.runner import progress_line

        def reply(obj: dict[str, Any]) -> None:
            stdout.write(REPLY + json.dumps(obj, default=str) + "\n")
            stdout.flush()

        def progress(done: int, total: int) -> None:
            stdout.write(progress_line(done / max(total, 1), f"{done}/{total} slices") + "\n")
            stdout.flush()

        reply({"ok": True, "id": None, "ready": True, "model": self.model.capabilities.name})
        for line in stdin:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
            except ValueError as exc:
                reply({"ok": False, "id": None, "error": f"not a JSON request: {exc}", "hint": "send one JSON "
                       "object per line"})
                continue
            answer = self.handle(request, progress)
            reply(answer)
            if answer.get("shutdown"):
                break
        return 0
