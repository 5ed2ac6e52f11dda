"""SegVol (Du et al., NeurIPS 2024): 3D CT segmentation from text and box prompts with zoom-out-zoom-in inference.

SegVol is an **external component the user installs** (like SAT): its network code is distributed only with its
Hugging Face repository ``BAAI/SegVol`` (``model_segvol.py``, loaded by transformers with ``trust_remote_code``)
and is neither bundled nor imported by OrganSegBench. The user downloads that repository to a folder (weights,
``config.json``, remote code, CLIP tokenizer files) and gives it as ``weights=FOLDER`` (or
``ORGANSEGBENCH_SEGVOL_DIR``, or the cache folder ``weights/segvol/SegVol``). Because loading it executes the
folder's Python code, the adapter refuses unless the user opted in: ``trust_remote_code=True`` (or
``ORGANSEGBENCH_SEGVOL_TRUST_REMOTE_CODE=1``); the opt-in, the folder and the sha256 of every weight and code file
are recorded in the provenance.

Loading follows SegVol's model card: ``AutoTokenizer.from_pretrained(folder)``,
``AutoModel.from_pretrained(folder, trust_remote_code=True, test_mode=True)``, then
``model.model.text_encoder.tokenizer = tokenizer``. Inference runs SegVol's recipe here, around the inner network's
forward call ``model.model(image, text=[name], boxes=box, points=None) -> logits`` (what SegVol's own
``forward_test`` and ``inference_demo.py`` call):

1. intensity (``SegVolProcessor.ForegroundNorm``): voxels above the volume mean define the foreground; clip the
   whole volume to their 0.05–99.95th percentiles and z-score with their mean/std; then min–max to [0, 1];
2. array axes (z, y, x) — SegVol reads the NIfTI voxel array (x, y, z) and swaps the first and last axes, so its
   frame is the stored voxel order without reorientation; the input image is used as stored (``reorient=False``);
3. foreground crop (MONAI ``CropForeground``, voxels > 0 after min–max);
4. zoom-out: the crop resized to the model's ``spatial_size`` (32×256×256 for SegVol) with ``nearest-exact``;
   a box prompt is carried into that grid the way SegVol makes its boxes (a cube in the crop, resized the same way,
   its inclusive voxel bounds ``[d0, h0, w0, d1, h1, w1]``) and rasterised back to the crop (nearest);
5. global logits resized back to the crop (nearest); the ROI is the bounding box of ``sigmoid > 0.5`` grown
   to at least one window per axis (half the shortfall on each side, clipped);
6. zoom-in: MONAI sliding window over the ROI (window = ``spatial_size``, overlap 0.5, constant blending,
   batch 1); per window, the box prompt is the bounds of the box cube in that window when there is one window,
   otherwise the bounds of the zoom-out prediction in that window (SegVol's rule);
7. fusion: the ROI's logits are replaced by the zoom-in logits; mask = ``sigmoid > 0.5``; the crop is pasted
   back into the full grid.

What was checked against SegVol's code by reading it (not copied): ``BAAI-DCAI/SegVol`` on GitHub
(``inference_demo.py`` — the zoom-out-zoom-in loop; ``utils/monai_inferers_utils.py`` — ROI rule, box cube,
sliding window with the per-window box rule), a copy of the Hugging Face ``model_segvol.py`` (``SegVolConfig``
defaults spatial_size 32×256×256 / patch_size 4×16×16, ``SegVolModel.forward_test``, ``SegVolProcessor``:
``ForegroundNorm``, ``DimTranspose``, ``MinMaxNormalization``, ``CropForegroundd``, ``Resized(nearest-exact)``;
the copy in the index is a derivative that adds a ``modality`` argument, BAAI/SegVol's own file was not indexed),
and the model card's loading snippet (quoted in a public script). We run the recipe around the inner network
instead of calling ``forward_test`` because SegVol's processor builds its inputs from files and derives box
prompts from a ground-truth mask, while our boxes come in input voxels; the steps above are those of
``forward_test``. What could not be checked: real weights were not available, so no output of the real network
was compared; the mapping of canonical names to SegVol's category words (:func:`segvol_term`) follows the names
SegVol's datasets use ("left kidney", "inferior vena cava"), not a published list; the real remote code was not
loaded (the tests load a stand-in with the same interface through the same transformers path). Point prompts
(SegVol's third kind) are not wired.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from organsegbench.errors import DependencyError, OrganSegBenchError
from organsegbench.models.base import BaseSegmenter, RunContext, import_torch
from organsegbench.models.protocol import Capabilities
from organsegbench.prompts import Box3D, PromptSet

log = logging.getLogger(__name__)

SPATIAL_SIZE = (32, 256, 256)
ZOOM_IN_OVERLAP = 0.5
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
GET_SEGVOL = ("download the SegVol repository from Hugging Face (for example `huggingface-cli download BAAI/SegVol "
              "--local-dir SegVol`: config.json, model_segvol.py, the weights and the CLIP tokenizer files) and "
              "give the folder with --weights FOLDER or ORGANSEGBENCH_SEGVOL_DIR=FOLDER, or put it at "
              "$ORGANSEGBENCH_CACHE/weights/segvol/SegVol")
SIDES = ("left", "right")


def segvol_term(canonical: str) -> str:
    """SegVol's category words for a canonical structure name: ``kidney_left`` -> ``left kidney``,
    ``inferior_vena_cava`` -> ``inferior vena cava`` (side moved to the front, underscores to spaces)."""
    words = canonical.split("_")
    if len(words) > 1 and words[-1] in SIDES:
        words = [words[-1], *words[:-1]]
    return " ".join(words)


# --------------------------------------------------------------------------------------------- preprocessing
def foreground_norm(ct: np.ndarray) -> np.ndarray:
    """SegVol's intensity normalisation (float32): clip to the 0.05/99.95 percentiles of voxels above the mean,
    subtract their mean, divide by their std."""
    a = np.asarray(ct, dtype=np.float32)
    fg = a[a > a.mean()]
    if fg.size == 0:  # constant image
        return np.zeros_like(a)
    lo, hi = np.percentile(fg, [0.05, 99.95])
    return (np.clip(a, lo, hi) - fg.mean()) / max(float(fg.std()), 1e-8)


def minmax(a: np.ndarray) -> np.ndarray:
    """Shift to 0 and divide by the maximum (SegVol's ``MinMaxNormalization``)."""
    a = a - a.min()
    return a / max(float(a.max()), 1e-8)


def foreground_bounds(a01: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(start, end-exclusive) of voxels > 0, as MONAI ``CropForeground``; the whole array when none is > 0."""
    nz = np.nonzero(a01 > 0)
    if nz[0].size == 0:
        return (0, 0, 0), tuple(a01.shape)
    return tuple(int(v.min()) for v in nz), tuple(int(v.max()) + 1 for v in nz)


def resize_nearest_exact(a: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """MONAI ``Resize(spatial_size, mode="nearest-exact")`` of a (d, h, w) array (SegVol's zoom-out transform)."""
    from monai.transforms import Resize

    return np.asarray(Resize(spatial_size=tuple(size), mode="nearest-exact")(a[None].astype(np.float32)))[0]


def bounds_box(mask) -> Any:
    """Inclusive bounds ``[d0, h0, w0, d1, h1, w1]`` (float tensor) of ``mask > 0``; all -1 when empty (SegVol)."""
    torch = import_torch()
    idx = torch.nonzero(mask > 0)
    if idx.shape[0] == 0:
        return torch.full((6,), -1.0)
    return torch.cat([idx.min(0).values, idx.max(0).values]).float()


def roi_bounds(logits, window: tuple[int, int, int]) -> tuple[list[int], list[int]] | None:
    """Zoom-in ROI from global logits (d, h, w): bounds of sigmoid > 0.5 grown by half the shortfall to ``window``
    on each side, clipped; ``(lo, hi_inclusive)`` or ``None`` when nothing was found."""
    torch = import_torch()
    idx = torch.nonzero(torch.sigmoid(logits) > 0.5)
    if idx.shape[0] == 0:
        return None
    lo, hi = idx.min(0).values.tolist(), idx.max(0).values.tolist()
    for a in range(3):
        grow = max(0, window[a] - (hi[a] - lo[a] + 1)) // 2
        lo[a], hi[a] = max(0, lo[a] - grow), min(logits.shape[a], hi[a] + grow)
    return lo, hi


class SegVolSegmenter(BaseSegmenter):
    """SegVol: text and/or 3D box prompts, whole volume, zoom-out-zoom-in (user-installed, remote code opt-in)."""

    capabilities = Capabilities(
        name="segvol", dims="3d", prompt_kinds=frozenset({"text", "box"}), modalities=("CT",),
        gpu="recommended", code_licence="MIT (BAAI-DCAI/SegVol repository; the user installs it)",
        weights_licence="MIT (model card; check)", weights=("segvol",), package="transformers",
        description="SegVol: 3D CT segmentation from text/box prompts, zoom-out-zoom-in (user-installed model)",
    )
    reorient = False  # SegVol works on the stored voxel order (see the module docstring)

    # ------------------------------------------------------------------------------------------- weights
    def resolve_weights(self) -> tuple[str | None, Path]:
        """The SegVol folder: ``weights``, ``segvol_dir``, ``ORGANSEGBENCH_SEGVOL_DIR`` or the cached ``segvol``."""
        from organsegbench.models import weights as W

        arg = self.weights_arg or self.options.get("segvol_dir") or os.environ.get("ORGANSEGBENCH_SEGVOL_DIR")
        name = None
        if arg is None or str(arg) == "segvol":
            name, path = "segvol", W.cache_path("segvol")
            if not path.exists():
                raise DependencyError("SegVol is not installed: no SegVol folder was given and none is in the "
                                      f"cache ({path})", GET_SEGVOL)
        else:
            path = Path(arg).expanduser()
        if not path.is_dir():
            raise OrganSegBenchError(f"SegVol folder {path} does not exist or is not a folder", GET_SEGVOL)
        missing = [f for f in ("config.json",) if not (path / f).is_file()]
        if not any((path / f).is_file() for f in WEIGHT_FILES):
            missing.append(" or ".join(WEIGHT_FILES))
        if missing:
            raise OrganSegBenchError(f"SegVol folder {path} lacks {', '.join(missing)}", GET_SEGVOL)
        return name, path

    def trusted(self) -> bool:
        """True when the user opted in to running the SegVol folder's code."""
        opt = self.options.get("trust_remote_code")
        if opt is None:
            opt = os.environ.get("ORGANSEGBENCH_SEGVOL_TRUST_REMOTE_CODE", "").strip().lower() in ("1", "true", "yes")
        return bool(opt)

    def load(self, weights_path: Path, device: str) -> None:
        """Load SegVol through transformers (remote code) after checking the opt-in."""
        if not self.trusted():
            raise OrganSegBenchError(
                f"loading SegVol runs the Python code in {weights_path} (transformers trust_remote_code), and you "
                "have not allowed that", "check the folder comes from BAAI/SegVol, then pass trust_remote_code=True "
                "or set ORGANSEGBENCH_SEGVOL_TRUST_REMOTE_CODE=1")
        try:
            import monai  # noqa: F401  (SegVol's preprocessing and sliding window)
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise DependencyError(f"SegVol needs transformers and MONAI ({exc.name} is missing)",
                                  "pip install 'organsegbench[models,sat]'") from exc
        if getattr(self, "hf_model", None) is None:
            self.code_hashes = self._hash_folder(weights_path)
            tok = AutoTokenizer.from_pretrained(str(weights_path), trust_remote_code=True, local_files_only=True)
            model = AutoModel.from_pretrained(str(weights_path), trust_remote_code=True, test_mode=True,
                                              local_files_only=True)
            model.model.text_encoder.tokenizer = tok
            self.hf_model = model.eval()
        self.hf_model.to(device)
        self.net = self.hf_model.model
        self.spatial_size = tuple(int(v) for v in getattr(self.hf_model.config, "spatial_size", SPATIAL_SIZE))

    @staticmethod
    def _hash_folder(folder: Path) -> dict[str, str]:
        """sha256 of the folder's weight, config and code files (provenance of what was executed)."""
        from organsegbench.download import sha256_file

        files = sorted(p for p in folder.iterdir() if p.is_file() and (p.suffix in (".py", ".json", ".bin")
                                                                        or p.name in WEIGHT_FILES))
        return {p.name: sha256_file(p) for p in files}

    # ------------------------------------------------------------------------------------------- prompts
    def targets(self, prompts: PromptSet) -> list[tuple[int, str, str | None, Box3D | None]]:
        """(label, output name, SegVol text or None, 3D box or None): text ``i`` is label ``i + 1``; a box joins the
        text of its label, otherwise it is a box-only target. 2D boxes of one label become their 3D extent."""
        terms = list(self.options.get("segvol_terms") or [segvol_term(t) for t in prompts.text])
        if len(terms) != len(prompts.text):
            raise OrganSegBenchError(f"segvol_terms has {len(terms)} entries for {len(prompts.text)} text prompts")
        boxes: dict[int, Box3D] = {}
        for b in prompts.boxes3d:
            if b.label in boxes:
                raise OrganSegBenchError(f"object {b.label} has more than one 3D box", "give one box per object")
            boxes[b.label] = b
        by_label: dict[int, list] = {}
        for b in prompts.boxes:
            by_label.setdefault(b.label, []).append(b)
        for lab, bs in by_label.items():
            if lab in boxes:
                raise OrganSegBenchError(f"object {lab} has both 2D and 3D boxes", "give one kind per object")
            boxes[lab] = Box3D(min(b.slice for b in bs), max(b.slice for b in bs), min(b.y0 for b in bs),
                               max(b.y1 for b in bs), min(b.x0 for b in bs), max(b.x1 for b in bs), lab, bs[0].name)
        out = []
        for i, (canon, term) in enumerate(zip(prompts.text, terms, strict=True), start=1):
            out.append((i, canon, term, boxes.pop(i, None)))
        for lab, b in sorted(boxes.items()):
            out.append((lab, b.name or f"object_{lab}", None, b))
        return out

    def zoom_box(self, box: Box3D, lo: tuple[int, ...], crop_shape: tuple[int, ...]) -> np.ndarray:
        """Our voxel box (input indices) -> SegVol box ``[d0, h0, w0, d1, h1, w1]`` on the zoom-out grid."""
        cube = np.zeros(crop_shape, dtype=np.float32)
        b = [(box.k0, box.k1), (box.y0, box.y1), (box.x0, box.x1)]
        sl = tuple(slice(max(0, int(round(a)) - o), max(0, int(round(z)) - o + 1)) for (a, z), o in zip(b, lo, strict=True))
        cube[sl] = 1
        if not cube.any():
            raise OrganSegBenchError("the box lies outside the image's foreground (SegVol crops to the body)",
                                     "check the box indices (K0:K1,X0,Y0,X1,Y1 in voxels of the input)")
        zoomed = resize_nearest_exact(cube, self.spatial_size)
        if not zoomed.any():  # thinner than one zoom-out voxel: keep the voxel its centre falls in
            c = [int((s.start + s.stop - 1) / 2 * t / n) for s, t, n in zip(sl, self.spatial_size, crop_shape, strict=True)]
            zoomed[tuple(c)] = 1
        return np.asarray(bounds_box(import_torch().from_numpy(zoomed)))

    # ------------------------------------------------------------------------------------------- inference
    def predict(self, volume: np.ndarray, prompts: PromptSet, ctx: RunContext) -> tuple[np.ndarray, dict[int, str]]:
        torch = import_torch()
        targets = self.targets(prompts)
        norm = minmax(foreground_norm(volume))
        lo, hi = foreground_bounds(norm)
        crop = norm[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        zoom = torch.from_numpy(resize_nearest_exact(crop, self.spatial_size))[None, None].to(ctx.device)
        image = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None, None]
        out = np.zeros(volume.shape, dtype=np.uint16)
        names, notes = {}, []
        for n, (lab, name, term, box) in enumerate(targets):
            ctx.check()
            text = [term] if term is not None else None
            zbox = self.zoom_box(box, lo, crop.shape) if box is not None else None
            logits, note = self.zoom_out_zoom_in(image, zoom, text, zbox, ctx)
            mask = np.zeros(volume.shape, dtype=bool)
            mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = (logits > 0).numpy()  # sigmoid > 0.5
            out[mask] = lab
            names[lab] = name
            notes.append({"label": lab, "segvol_text": term, "zoom_out_box": None if zbox is None else zbox.tolist(),
                          **note})
            ctx.report(n + 1, len(targets))
        ctx.notes["segvol"] = {"spatial_size": list(self.spatial_size), "foreground_crop_zyx": [list(lo), list(hi)],
                               "zoom_in_overlap": ZOOM_IN_OVERLAP, "targets": notes,
                               "overlap_rule": "later targets (higher labels) win"}
        return out, names

    def _net(self, image, text, boxes):
        torch = import_torch()
        with torch.no_grad():
            return self.net(image, text=text, boxes=boxes, points=None)

    def zoom_out_zoom_in(self, image, zoom, text, zbox, ctx: RunContext):
        """Logits (d, h, w) on the foreground crop for one target (steps 4–7 of the module docstring)."""
        torch = import_torch()
        import torch.nn.functional as F

        crop_shape = tuple(image.shape[2:])
        box_t = None if zbox is None else torch.as_tensor(zbox, dtype=torch.float32)[None].to(ctx.device)
        glob = F.interpolate(self._net(zoom, text, box_t).float().cpu(), size=crop_shape, mode="nearest")[0, 0]
        cube = None
        if zbox is not None:
            small = torch.zeros(self.spatial_size)
            z = [int(v) for v in zbox]
            small[z[0]:z[3] + 1, z[1]:z[4] + 1, z[2]:z[5] + 1] = 1
            cube = F.interpolate(small[None, None], size=crop_shape, mode="nearest")[0, 0]
        roi = roi_bounds(glob, self.spatial_size)
        if roi is None:
            log.warning("SegVol zoom-out found no foreground; keeping the zoom-out result")
            return glob, {"zoom_in": False}
        (d0, h0, w0), (d1, h1, w1) = roi
        sl = (slice(d0, d1 + 1), slice(h0, h1 + 1), slice(w0, w1 + 1))
        local = self.sliding_window(image[(slice(None), slice(None), *sl)], text,
                                    None if cube is None else cube[sl], (torch.sigmoid(glob[sl]) > 0.5).float(), ctx)
        glob[sl] = local
        return glob, {"zoom_in": True, "roi_zyx": [[d0, h0, w0], [d1, h1, w1]]}

    def sliding_window(self, roi_image, text, cube, global_preds, ctx: RunContext):
        """MONAI sliding window over the ROI with SegVol's per-window box rule; logits (d, h, w) on the CPU."""
        import_torch()
        import torch.nn.functional as F
        from monai.data.utils import dense_patch_slices
        from monai.inferers import sliding_window_inference

        roi = self.spatial_size
        shape = tuple(roi_image.shape[2:])
        full = tuple(max(s, r) for s, r in zip(shape, roi, strict=True))
        interval = tuple(r if r == f else max(int(r * (1 - ZOOM_IN_OVERLAP)), 1) for r, f in zip(roi, full, strict=True))
        n_win = len(dense_patch_slices(full, roi, interval))
        pad = []
        for s, r in zip(reversed(shape), reversed(roi), strict=True):
            diff = max(r - s, 0)
            pad += [diff // 2, diff - diff // 2]
        padded_preds = F.pad(global_preds, pad)

        def predictor(window, coords, *_, **__):
            ctx.check()
            boxes = None
            if cube is not None:
                c = coords[0] if isinstance(coords, list | tuple) and isinstance(coords[0], list | tuple) else coords
                sp = tuple(c[-3:])
                src = cube[sp] if n_win == 1 else padded_preds[sp]  # SegVol indexes the unpadded cube
                boxes = bounds_box(src)[None].to(window.device)
            return self._net(window, text, boxes).float()

        out = sliding_window_inference(roi_image.to(ctx.device), roi, 1, predictor, overlap=ZOOM_IN_OVERLAP,
                                       mode="constant", with_coord=True)
        return out[0, 0].cpu()

    # ------------------------------------------------------------------------------------------- provenance
    def provenance(self, prompts, ctx, frame):
        out = super().provenance(prompts, ctx, frame)
        out["external_component"] = "SegVol (user-installed; BAAI/SegVol remote code run with trust_remote_code)"
        out["trust_remote_code"] = True
        out["segvol_folder"] = str(self.weights_path)
        out["segvol_files_sha256"] = getattr(self, "code_hashes", {})
        return out
