"""SAM 2 / SAM 2.1: the image predictor (box/points per slice) and the video predictor (a box on a key slice
propagated through the volume in both directions, slices as video frames).

Models are built by SAM 2's own ``build_sam2`` / ``build_sam2_video_predictor`` from the Hydra config named in the
weights catalog (plus the catalog's ``config_overrides`` and any ``hydra_overrides`` option), and the checkpoint is
loaded by SAM 2's own loader (``torch.load(weights_only=True)``, strict keys).

Frames for the video predictor are made in memory with the recipe of SAM 2's JPEG-folder loader (RGB, PIL resize to
``image_size``², /255, ImageNet mean/std) but without the JPEG round trip, through the predictor's ``init_state``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from organsegbench.errors import DependencyError, OrganSegBenchError
from organsegbench.io.image import Image
from organsegbench.models.base import BaseSegmenter, RunContext, import_torch, window_to_uint8
from organsegbench.models.protocol import Capabilities
from organsegbench.models.sam import checkpoint_error, to_rgb
from organsegbench.models.slicewise import SliceSegmenter
from organsegbench.prompts import Box2D, Point2D, PromptSet

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)



@contextlib.contextmanager
def _checkpoint_errors(weights_path: Path, config: str):
    """Turn SAM 2's loader failures on a wrong file (not a checkpoint, no ``model`` entry, keys of another
    architecture) into an :class:`InputFileError` naming the file; out-of-memory errors pass through."""
    import pickle

    from organsegbench.models.base import is_oom

    try:
        yield
    except (pickle.UnpicklingError, KeyError, EOFError, ValueError, RuntimeError) as exc:
        if is_oom(exc):
            raise
        raise checkpoint_error(weights_path, exc, f"SAM 2 ({Path(config).stem})") from exc

def _import_sam2():
    try:
        import sam2  # noqa: F401
    except ImportError as exc:
        raise DependencyError("SAM 2 needs the sam2 package", "pip install 'organsegbench[models]'") from exc


class _Sam2ConfigMixin:
    """Config name and Hydra overrides from the catalog entry, the options, or the defaults; SAM 2 checkpoints."""

    def accepted_weight_models(self) -> tuple[str, ...]:
        return ("sam2",)

    def sam2_config(self) -> tuple[str, list[str]]:
        from organsegbench.models import weights as W

        config, overrides = DEFAULT_CONFIG, []
        if self.weights_name and self.weights_name in W.catalog():
            e = W.entry(self.weights_name)
            config = e.config or config
            overrides = list(e.config_overrides)
        config = self.options.get("config", config)
        overrides += list(self.options.get("hydra_overrides", ()))
        return config, overrides


class Sam2Segmenter(_Sam2ConfigMixin, SliceSegmenter):
    """SAM 2.1 through ``SAM2ImagePredictor``: batched ``set_image_batch`` encoding, predictor decoding."""

    capabilities = Capabilities(
        name="sam2", dims="2d", prompt_kinds=frozenset({"box", "point"}), modalities=("CT", "MR", "PET"),
        gpu="recommended", code_licence="Apache-2.0", weights_licence="Apache-2.0",
        weights=("sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large"),
        package="sam2", description="SAM 2.1 (Meta) image predictor: box/point prompts slice by slice",
    )
    recipe = "sam2-image-predictor-v1"

    def load(self, weights_path: Path, device: str) -> None:
        _import_sam2()
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        config, overrides = self.sam2_config()
        with _checkpoint_errors(weights_path, config):
            self.model = build_sam2(config, str(weights_path), device=device, hydra_overrides_extra=overrides)
        self.predictor = SAM2ImagePredictor(self.model)

    def encode(self, slices: list[np.ndarray], device: str) -> list[Any]:
        p = self.predictor
        p.set_image_batch([to_rgb(s) for s in slices])
        f = p._features
        out = [{"image_embed": f["image_embed"][i:i + 1],
                "high_res_feats": [h[i:i + 1] for h in f["high_res_feats"]],
                "orig_hw": tuple(int(v) for v in s.shape[:2])} for i, s in enumerate(slices)]
        p.reset_predictor()
        return out

    def decode(self, embedding: Any, shape: tuple[int, int], boxes: list[Box2D], points: list[Point2D],
               device: str) -> np.ndarray:
        p = self.predictor
        p.reset_predictor()
        p._features = {"image_embed": embedding["image_embed"].to(device),
                       "high_res_feats": [h.to(device) for h in embedding["high_res_feats"]]}
        p._orig_hw = [tuple(embedding["orig_hw"])]
        p._is_image_set, p._is_batch = True, False
        coords = np.array([[q.x, q.y] for q in points], dtype=float) if points else None
        plabels = np.array([1 if q.positive else 0 for q in points]) if points else None
        if not boxes:
            multi = len(points) == 1
            masks, scores, _ = p.predict(point_coords=coords, point_labels=plabels, multimask_output=multi)
            return masks[int(np.argmax(scores))] > 0 if multi else masks[0] > 0
        out = np.zeros(shape, dtype=bool)
        for b in boxes:
            masks, _, _ = p.predict(point_coords=coords, point_labels=plabels, box=np.array(b.xyxy, dtype=float),
                                    multimask_output=False)
            out |= masks[0] > 0
        return out


def frames_tensor(volume_u8: np.ndarray, image_size: int):
    """Slices as SAM 2 video frames: RGB, PIL resize to ``image_size``², /255, ImageNet mean/std -> (N,3,S,S)."""
    torch = import_torch()
    from PIL import Image as PILImage

    frames = []
    for s in volume_u8:
        rgb = np.array(PILImage.fromarray(to_rgb(s)).resize((image_size, image_size))) / 255.0
        frames.append(torch.from_numpy(rgb).permute(2, 0, 1).float())
    t = torch.stack(frames)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    return (t - mean) / std


@contextlib.contextmanager
def _in_memory_frames(volume_u8: np.ndarray):
    """Make the video predictor's ``init_state`` take frames from ``volume_u8`` instead of a JPEG folder."""
    import sam2.sam2_video_predictor as vp

    original = vp.load_video_frames

    def load(video_path, image_size, offload_video_to_cpu, compute_device=None, **_):
        images = frames_tensor(volume_u8, image_size)
        if not offload_video_to_cpu and compute_device is not None:
            images = images.to(compute_device)
        return images, volume_u8.shape[1], volume_u8.shape[2]

    vp.load_video_frames = load
    try:
        yield
    finally:
        vp.load_video_frames = original


class Sam2VideoSegmenter(_Sam2ConfigMixin, BaseSegmenter):
    """SAM 2.1 video predictor over the slices: prompts on key slice(s), propagation forward then backward."""

    capabilities = Capabilities(
        name="sam2-video", dims="3d", prompt_kinds=frozenset({"box", "point"}), modalities=("CT", "MR", "PET"),
        gpu="recommended", code_licence="Apache-2.0", weights_licence="Apache-2.0",
        weights=("sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large"),
        package="sam2",
        description="SAM 2.1 video predictor: a box on a key slice propagated through the volume both ways",
    )

    def load(self, weights_path: Path, device: str) -> None:
        _import_sam2()
        from sam2.build_sam import build_sam2_video_predictor

        config, overrides = self.sam2_config()
        with _checkpoint_errors(weights_path, config):
            self.predictor = build_sam2_video_predictor(config, str(weights_path), device=device,
                                                        hydra_overrides_extra=overrides)

    def preprocess(self, volume: np.ndarray, image: Image, ctx: RunContext) -> np.ndarray:
        out, rec = window_to_uint8(volume, self.options.get("modality"), self.options.get("window"))
        ctx.notes["intensity"] = rec
        return out

    def predict(self, volume: np.ndarray, prompts: PromptSet, ctx: RunContext) -> tuple[np.ndarray, dict[int, str]]:
        torch = import_torch()
        names = {lab: (name or f"object_{lab}") for lab, name in sorted(prompts.labels().items())}
        if prompts.boxes3d:
            raise OrganSegBenchError("the video predictor takes 2D boxes on key slices, not 3D boxes",
                                     "give the box on one slice (K,X0,Y0,X1,Y1); it is propagated through the volume")
        n = volume.shape[0]
        out = np.zeros(volume.shape, dtype=np.uint16)
        with torch.inference_mode(), _in_memory_frames(volume):
            state = self.predictor.init_state(video_path="<in-memory volume>", offload_video_to_cpu=True,
                                              offload_state_to_cpu=bool(self.options.get("offload_state_to_cpu")))
            for k in prompts.slices():
                boxes, points = prompts.for_slice(k)
                for lab in sorted({b.label for b in boxes} | {p.label for p in points}):
                    bx = [b for b in boxes if b.label == lab]
                    pts = [p for p in points if p.label == lab]
                    if len(bx) > 1:
                        raise OrganSegBenchError(f"object {lab} has {len(bx)} boxes on slice {k}",
                                                 "the video predictor takes one box per object per key slice")
                    kwargs: dict[str, Any] = {}
                    if bx:
                        kwargs["box"] = np.array(bx[0].xyxy, dtype=np.float32)
                    if pts:
                        kwargs["points"] = np.array([[p.x, p.y] for p in pts], dtype=np.float32)
                        kwargs["labels"] = np.array([1 if p.positive else 0 for p in pts], dtype=np.int32)
                    self.predictor.add_new_points_or_box(state, frame_idx=k, obj_id=lab, **kwargs)
            done = 0
            start = min(prompts.slices())
            for reverse in (False, True):
                for f, obj_ids, logits in self.predictor.propagate_in_video(state, start_frame_idx=start,
                                                                            reverse=reverse):
                    ctx.check()
                    for j, lab in enumerate(obj_ids):
                        m = (logits[j, 0] > 0).cpu().numpy()
                        out[f][m] = lab
                    done += 1
                    ctx.report(min(done, n), n)
            self.predictor.reset_state(state)
        ctx.notes["propagation"] = f"forward and backward from slice {start}"
        ctx.notes["overlap_rule"] = "higher label value wins"
        return out, names
