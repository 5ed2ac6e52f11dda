"""Base class doing the routine work of every adapter.

:meth:`BaseSegmenter.segment` checks the prompts against the declared capabilities, reorients the image to the
model frame (:mod:`organsegbench.models.frame`), clips boxes, applies the intensity window hook, picks the device
(cuda, mps, cpu), runs the adapter's :meth:`BaseSegmenter.predict` with CUDA out-of-memory handling (a smaller
batch, then the CPU, or a clear error—never an empty mask), maps the label map back onto the input grid, records
provenance, and writes the output atomically (a cancelled or failed run leaves no partial file).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from organsegbench.errors import DependencyError, OrganSegBenchError
from organsegbench.io.image import Image
from organsegbench.models.frame import Frame
from organsegbench.models.protocol import CancelToken, Capabilities, ModelResult, RunCancelled
from organsegbench.prompts import Box3D, PromptSet, box_is_clipped, clip_box

log = logging.getLogger(__name__)

#: CT window used by the default intensity hook (level, width) in HU: abdomen soft tissue
CT_WINDOW = (40.0, 400.0)


def pick_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available, else ``mps``, else ``cpu``; an explicit unavailable device errors."""
    torch = import_torch()
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OrganSegBenchError(f"device {device!r} was requested but CUDA is not available",
                                 "use --device cpu (slow) or run on a machine with an NVIDIA GPU")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise OrganSegBenchError(f"unknown device {device!r}", "use auto, cpu, cuda, cuda:N or mps")
    return device


def import_torch():
    """Import torch or raise :class:`DependencyError` naming the extra to install."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is installed in the test environment
        raise DependencyError("this model needs PyTorch, which is not installed",
                              "pip install 'organsegbench[models]'") from exc
    return torch


def is_oom(exc: BaseException) -> bool:
    """True for a CUDA (or MPS) out-of-memory error."""
    torch = import_torch()
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def window_to_uint8(array: np.ndarray, modality: str | None = None,
                    window: tuple[float, float] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Map intensities to 0..255 (uint8): a CT window (level, width in HU) or the 0.5–99.5 percentiles.

    Returns the array and a record of what was done (for the provenance).
    """
    a = np.asarray(array, dtype=np.float32)
    if window is None and (modality == "CT" or (modality is None and a.size and float(a.min()) < -500)):
        window = CT_WINDOW
    if window is not None:
        level, width = window
        lo, hi = level - width / 2, level + width / 2
        rec = {"kind": "ct_window", "level_hu": level, "width_hu": width}
    else:
        lo, hi = (float(v) for v in np.percentile(a, [0.5, 99.5])) if a.size else (0.0, 1.0)
        rec = {"kind": "percentile", "p0.5": lo, "p99.5": hi}
    if hi <= lo:
        hi = lo + 1.0
    out = np.clip((a - lo) / (hi - lo), 0, 1) * 255.0
    return np.round(out).astype(np.uint8), rec


def write_labelmap(img: Image, path: Path) -> None:
    """Write a label image atomically (temp file then rename); uses the io package's writer when present."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    tmp = path.with_name(f".{path.name}.partial{suffix}")
    try:
        try:
            from organsegbench.io import write_image
        except ImportError:
            write_image = None
        if write_image is not None:
            write_image(img, tmp)
        else:  # pragma: no cover - the io helper provides write_image
            import SimpleITK as sitk

            sitk.WriteImage(img.to_sitk(), str(tmp), useCompression=True)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class RunContext:
    """State of one run, passed to :meth:`BaseSegmenter.predict`."""

    device: str
    batch_size: int
    cancel: CancelToken | None = None
    progress: Callable[[int, int], None] | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    cpu_fallback: bool = True
    #: the input image with its geometry, for adapters that run a whole-image pipeline of their own
    #: (TotalSegmentator, MOOSE, SAT) instead of working on the model-frame array
    image: Image | None = None

    def check(self) -> None:
        """Raise :class:`RunCancelled` when the run was cancelled."""
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()

    def report(self, done: int, total: int) -> None:
        """Forward progress (units are adapter-defined: slices, frames, patches)."""
        if self.progress is not None:
            self.progress(done, total)


class BaseSegmenter:
    """Routine work shared by all adapters; subclasses set :attr:`capabilities` and implement
    :meth:`load` and :meth:`predict` (and optionally :meth:`preprocess`)."""

    capabilities: ClassVar[Capabilities]
    #: reorient to the LPS-aligned model frame before predicting
    reorient: ClassVar[bool] = True

    def __init__(self, weights: str | Path | None = None, device: str = "auto", batch_size: int = 4,
                 seed: int = 0, cpu_fallback: bool = True, **options: Any) -> None:
        self.weights_arg = weights
        self.device_arg = device
        self.batch_size = max(1, int(batch_size))
        self.seed = int(seed)
        self.cpu_fallback = cpu_fallback
        self.options = options
        self.device: str | None = None
        self._loaded_on: str | None = None
        self.weights_name: str | None = None
        self.weights_path: Path | None = None

    # ------------------------------------------------------------------------------------------- weights
    def resolve_weights(self) -> tuple[str | None, Path]:
        """(catalog name or None, path): a catalog name is looked up in the cache, a path is used as is."""
        from organsegbench.models import weights as W

        arg = self.weights_arg or (self.capabilities.weights[0] if self.capabilities.weights else None)
        if arg is None:
            raise OrganSegBenchError(f"model {self.capabilities.name!r} needs weights and none were given")
        if isinstance(arg, Path) or os.sep in str(arg) or Path(str(arg)).suffix in (".pth", ".pt", ".ckpt"):
            p = Path(arg).expanduser()
            if not p.exists():
                raise OrganSegBenchError(f"weights file {p} does not exist",
                                         "give an existing checkpoint or a catalog name (`organsegbench weights list`)")
            return None, p
        entry = W.entry(str(arg))
        if entry.model != self.capabilities.name.replace("-video", "") and entry.model not in self.accepted_weight_models():
            raise OrganSegBenchError(f"weights {arg!r} are for model {entry.model!r}, not {self.capabilities.name!r}",
                                     f"use one of: {', '.join(self.capabilities.weights)}")
        return str(arg), W.require(str(arg))

    def accepted_weight_models(self) -> tuple[str, ...]:
        """Catalog ``model`` values whose checkpoints this adapter can load."""
        return (self.capabilities.name,)

    def ensure_loaded(self, device: str) -> None:
        """Load the model on ``device`` once (and move it when the device changes)."""
        if self._loaded_on == device:
            return
        if self.weights_path is None:
            self.weights_name, self.weights_path = self.resolve_weights()
        self.load(self.weights_path, device)
        self._loaded_on = device
        self.device = device

    # ------------------------------------------------------------------------------------------- hooks
    def load(self, weights_path: Path, device: str) -> None:
        """Build the network and load ``weights_path`` onto ``device`` (``torch.load(weights_only=True)``)."""
        raise NotImplementedError

    def preprocess(self, volume: np.ndarray, image: Image, ctx: RunContext) -> np.ndarray:
        """Intensity hook (default: identity). 2D adapters window to uint8 here."""
        return volume

    def predict(self, volume: np.ndarray, prompts: PromptSet, ctx: RunContext) -> tuple[np.ndarray, dict[int, str]]:
        """Model-specific step: label map in the model frame and label value -> name."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------- checks
    def check_prompts(self, prompts: PromptSet, output: str, slice_range: tuple[int, int] | None) -> PromptSet:
        """Validate prompts against the capabilities; resolve text to canonical structure names."""
        caps = self.capabilities
        if any(not str(t).strip() for t in prompts.text) or (prompts.protocol.get("text_given") and not prompts.text):
            raise OrganSegBenchError("an empty text prompt was given",
                                     "give structure names, for example --text liver,spleen")
        kinds = prompts.kinds
        bad = kinds - set(caps.prompt_kinds)
        if bad:
            raise OrganSegBenchError(
                f"model {caps.name!r} does not take {'/'.join(sorted(bad))} prompts",
                f"it takes: {', '.join(sorted(caps.prompt_kinds))}",
            )
        if not kinds and "none" not in caps.prompt_kinds:
            raise OrganSegBenchError(f"model {caps.name!r} needs a prompt",
                                     f"give one of: {', '.join(sorted(caps.prompt_kinds))} (--box, --prompts, --text)")
        if prompts.text:
            prompts = replace(prompts, text=[resolve_structure(t) for t in prompts.text])
        if output not in ("prompted", "volume"):
            raise OrganSegBenchError(f"unknown output mode {output!r}", "use prompted or volume")
        if output == "volume" and caps.dims == "2d" and slice_range is None and not prompts.boxes3d:
            raise OrganSegBenchError(
                f"model {caps.name!r} is a 2D (slice-by-slice) model and 3D output was asked without a slice range",
                "give --slices K0:K1 (the boxes are applied to every slice in the range) or a 3D box K0:K1,X0,Y0,X1,Y1",
            )
        return prompts

    # ------------------------------------------------------------------------------------------- run
    def segment(self, image: Image, prompts: PromptSet | None = None, *, output: str = "prompted",
                slice_range: tuple[int, int] | None = None, out: str | Path | None = None,
                cancel: CancelToken | None = None, progress: Callable[[int, int], None] | None = None,
                roi: Box3D | None = None) -> ModelResult:
        """Segment ``image``; prompts are in its array-index frame. See the module docstring for the steps.

        ``roi`` (a 3D box in input voxel indices) runs the model on that crop only; outside it the result is 0.
        """
        self.check_boxes_inside(prompts or PromptSet(), image.shape, slice_range)
        if roi is not None:
            from organsegbench.models.crop import segment_roi

            self.check_prompts(prompts or PromptSet(), output, slice_range)
            return segment_roi(self, image, prompts, roi, output=output, slice_range=slice_range, out=out,
                               cancel=cancel, progress=progress)
        prompts = self.check_prompts(prompts or PromptSet(), output, slice_range)
        frame = Frame.from_direction(image.direction, image.shape) if self.reorient else Frame.identity(image.shape)
        volume = frame.to_model(image.array)
        mp = frame.prompts_to_model(prompts)
        notes: dict[str, Any] = {}
        if output == "volume" and slice_range is not None:
            mp = self.expand_to_range(mp, slice_range, frame, notes)
        mp = self.clip_prompts(mp, volume.shape, notes)
        ctx = RunContext(device=pick_device(self.device_arg), batch_size=self.batch_size, cancel=cancel,
                         progress=progress, notes=notes, cpu_fallback=self.cpu_fallback, image=image)
        out_path = Path(out) if out is not None else None
        try:
            ctx.check()
            volume = self.preprocess(volume, image, ctx)
            labels_model, names = self.run_with_fallback(volume, mp, ctx)
            ctx.check()
            if not np.any(labels_model):
                notes["empty_output"] = True
                log.warning("model %s produced an empty mask", self.capabilities.name)
            arr = frame.from_model(labels_model)
            dtype = np.uint8 if (max(names, default=0) < 256) else np.uint16
            lab_img = image.with_array(arr.astype(dtype))
            lab_img.metadata = {}
            from organsegbench.provenance import image_record

            prov = self.provenance(prompts, ctx, frame)
            prov["input"] = image_record(image)
            result = ModelResult(lab_img, names, prov)
            if out_path is not None:
                result.write(out_path)
            return result
        except BaseException:
            if out_path is not None:
                for p in (out_path, out_path.with_name(out_path.name + ".provenance.json")):
                    p.unlink(missing_ok=True)
            raise

    def expand_to_range(self, prompts: PromptSet, slice_range: tuple[int, int], frame: Frame,
                        notes: dict[str, Any]) -> PromptSet:
        """For 3D output of a 2D model: apply each label's box to every slice of ``slice_range`` (input indices)."""
        from organsegbench.prompts import Box2D

        k0, k1 = sorted(slice_range)
        n = frame.model_shape[0]
        if k0 < 0 or k1 >= n:
            raise OrganSegBenchError(f"slice range {k0}:{k1} is outside the image (slices 0..{n - 1})")
        by_label: dict[int, Box2D] = {}
        for b in prompts.boxes:
            by_label.setdefault(b.label, b)
        boxes = [replace(b, slice=k) for b in by_label.values() for k in range(k0, k1 + 1)]
        notes["slice_range"] = [k0, k1]
        return replace(prompts, boxes=boxes)

    def check_boxes_inside(self, prompts: PromptSet, shape: tuple[int, int, int],
                           slice_range: tuple[int, int] | None) -> None:
        """Raise for prompts made for an image of another shape (a prompt file records it) and for a box (or its
        slice) wholly outside the image, named in the caller's input-array indices (before the boxes are moved
        into the model frame, where flipped axes would change the numbers)."""
        if prompts.image_shape is not None and tuple(prompts.image_shape) != tuple(shape):
            raise OrganSegBenchError(
                f"the prompts were made for an image of {' x '.join(map(str, prompts.image_shape))} voxels "
                f"(z, y, x), but this image is {' x '.join(map(str, shape))}",
                "derive the prompts from this image's reference mask, or give the image they were made for")
        for b in prompts.boxes:  # with a slice range the boxes' own slices are replaced: check them in-plane
            clip_box(b if slice_range is None else replace(b, slice=0), shape)
        for b3 in prompts.boxes3d:
            if min(shape[0] - 1, b3.k1) < max(0, b3.k0):
                raise OrganSegBenchError(f"3D box slices {b3.k0}:{b3.k1} lie outside the image (0..{shape[0] - 1})")
            clip_box(b3.to_slices([max(0, b3.k0)])[0], shape)

    def clip_prompts(self, prompts: PromptSet, shape: tuple[int, int, int], notes: dict[str, Any]) -> PromptSet:
        """Clip boxes partly outside the image (recorded); boxes wholly outside raise."""
        if not prompts.boxes and not prompts.boxes3d:
            return prompts
        from organsegbench.prompts import Box3D

        clipped = [b for b in prompts.boxes if box_is_clipped(b, shape)]
        boxes = [clip_box(b, shape) for b in prompts.boxes]
        b3 = []
        for b in prompts.boxes3d:
            k0, k1 = max(0, b.k0), min(shape[0] - 1, b.k1)
            if k1 < k0:
                raise OrganSegBenchError(f"3D box slices {b.k0}:{b.k1} lie outside the image (0..{shape[0] - 1})")
            c = clip_box(replace(b.to_slices([k0])[0]), shape)
            b3.append(Box3D(k0, k1, c.y0, c.y1, c.x0, c.x1, b.label, b.name))
            if (k0, k1, c.xyxy) != (b.k0, b.k1, (b.x0, b.y0, b.x1, b.y1)):
                clipped.append(b)
        if clipped:
            notes["clipped_boxes"] = len(clipped)
            log.warning("%d box(es) reached outside the image and were clipped", len(clipped))
        return replace(prompts, boxes=boxes, boxes3d=b3)

    def run_with_fallback(self, volume: np.ndarray, prompts: PromptSet, ctx: RunContext):
        """Run :meth:`predict`; on out-of-memory retry on the CPU (when allowed) or raise a clear error.

        Slice-wise adapters already shrink their batch inside :meth:`predict`; this is the last resort.
        """
        self.ensure_loaded(ctx.device)
        try:
            return self.predict(volume, prompts, ctx)
        except RunCancelled:
            raise
        except Exception as exc:
            if not is_oom(exc):
                raise
            self.release_memory()
            if ctx.device == "cpu" or not ctx.cpu_fallback:
                raise OrganSegBenchError(
                    f"model {self.capabilities.name!r} ran out of memory on {ctx.device} even with batch size 1",
                    "free GPU memory (close other programs), crop the image, use a smaller model, "
                    "or run with --device cpu",
                ) from exc
            log.warning("out of memory on %s; continuing on the CPU (slow)", ctx.device)
            ctx.notes["oom_fallback"] = f"{ctx.device}->cpu"
            ctx.device = "cpu"
            ctx.batch_size = 1
            self.ensure_loaded("cpu")
            return self.predict(volume, prompts, ctx)

    def release_memory(self) -> None:
        """Free cached accelerator memory after an OOM."""
        torch = import_torch()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def provenance(self, prompts: PromptSet, ctx: RunContext, frame: Frame) -> dict[str, Any]:
        """Provenance record of a run."""
        from organsegbench.models.weights import weights_provenance
        from organsegbench.provenance import provenance

        return provenance(
            model=self.capabilities.name,
            capabilities=self.capabilities.as_dict(),
            **weights_provenance(self.weights_name, self.weights_path),
            prompts=prompts.to_dict(),
            prompt_protocol=prompts.protocol,
            seed=self.seed,
            device=ctx.device,
            batch_size=ctx.batch_size,
            frame={"perm": list(frame.perm), "flip": list(frame.flip)},
            options={k: v for k, v in self.options.items() if isinstance(v, str | int | float | bool | None)},
            notes=ctx.notes,
        )


def resolve_structure(name: str) -> str:
    """Canonical structure name for a text prompt (close matches listed for unknown names)."""
    try:
        from organsegbench.labels import canonical_name
    except ImportError:  # the package may not re-export it yet
        from organsegbench.labels.registry import canonical_name
    return canonical_name(name.strip())
