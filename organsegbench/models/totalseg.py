"""TotalSegmentator v2 through its Python API (``normal``: tasks 291–295 at 1.5 mm; ``fast``: task 297 at 3 mm;
``roi_subset``), with its own loader pointed at our weights cache.

Before the first call the adapter builds ``<cache>/weights/totalsegmentator_home`` with

* ``config.json`` with ``send_usage_stats: false`` (TotalSegmentator's usage statistics are **off by default**;
  set ``ORGANSEGBENCH_TOTALSEG_USAGE_STATS=1`` to allow them) and the statistics disclaimer marked as shown;
* ``nnunet/results/<DatasetXXX…>`` links to the task folders in our cache (``organsegbench weights download
  totalseg_v2_organs`` …),

and sets ``TOTALSEG_HOME_DIR`` and ``TOTALSEG_WEIGHTS_PATH`` to it, so TotalSegmentator never downloads on its own;
missing task folders raise our error saying which weights to download or import. nnU-Net unpickles the checkpoints
with ``weights_only=False``, so each run first scans them (:mod:`organsegbench.models.pickle_scan`). Outputs are on the input grid
(TotalSegmentator resamples internally and back); label names are TotalSegmentator's class names.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from organsegbench.config import weights_dir
from organsegbench.errors import DependencyError, OrganSegBenchError
from organsegbench.io.image import Image
from organsegbench.models.base import BaseSegmenter, RunContext
from organsegbench.models.protocol import Capabilities
from organsegbench.prompts import PromptSet

log = logging.getLogger(__name__)

#: TotalSegmentator task id -> catalog name
TASK_WEIGHTS = {291: "totalseg_v2_organs", 292: "totalseg_v2_vertebrae", 293: "totalseg_v2_cardiac",
                294: "totalseg_v2_muscles", 295: "totalseg_v2_ribs", 297: "totalseg_v2_total_3mm",
                298: "totalseg_v2_total_6mm"}


def totalseg_home(root: Path | None = None) -> Path:
    """Folder used as ``TOTALSEG_HOME_DIR`` (inside our weights cache)."""
    return (root or weights_dir()) / "totalsegmentator_home"


def prepare_totalseg_env(task_ids: list[int], root: Path | None = None) -> Path:
    """Point TotalSegmentator at our cache (links + config with usage statistics off); return its home."""
    from organsegbench.models import weights as W

    home = totalseg_home(root)
    results = home / "nnunet" / "results"
    results.mkdir(parents=True, exist_ok=True)
    cfg_file = home / "config.json"
    cfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {"totalseg_id": "organsegbench",
                                                                       "prediction_counter": 0}
    cfg["send_usage_stats"] = os.environ.get("ORGANSEGBENCH_TOTALSEG_USAGE_STATS", "0") == "1"
    cfg["statistics_disclaimer_shown"] = True
    cfg_file.write_text(json.dumps(cfg, indent=4))
    missing = []
    for tid in task_ids:
        name = TASK_WEIGHTS.get(tid)
        if name is None:
            raise OrganSegBenchError(f"TotalSegmentator task {tid} is not in the weights catalog",
                                     f"supported tasks: {sorted(TASK_WEIGHTS)}")
        src = W.cache_path(name, root)
        if not src.is_dir():
            missing.append(name)
            continue
        link = results / src.name
        if link.is_symlink() and link.resolve() != src.resolve():
            link.unlink()
        if not link.exists():
            link.symlink_to(src, target_is_directory=True)
    if missing:
        raise OrganSegBenchError(
            f"TotalSegmentator weights {', '.join(missing)} are not in the cache",
            "; ".join(W.how_to_get(m) for m in missing),
        )
    os.environ["TOTALSEG_HOME_DIR"] = str(home)
    os.environ["TOTALSEG_WEIGHTS_PATH"] = str(results)
    return home


class TotalSegmentatorSegmenter(BaseSegmenter):
    """TotalSegmentator (Wasserthal et al. 2023), automatic whole-body CT segmentation (117 structures)."""

    capabilities = Capabilities(
        name="totalsegmentator", dims="3d", prompt_kinds=frozenset({"none", "text"}), modalities=("CT",),
        gpu="recommended", code_licence="Apache-2.0", weights_licence="Apache-2.0 (open tasks)",
        weights=("totalseg_v2_organs", "totalseg_v2_vertebrae", "totalseg_v2_cardiac", "totalseg_v2_muscles",
                 "totalseg_v2_ribs", "totalseg_v2_total_3mm"),
        vocabulary="total", package="totalsegmentator",
        description="TotalSegmentator v2 (nnU-Net): 117 CT structures; --fast = 3 mm model; --roi-subset",
    )
    reorient = False  # TotalSegmentator reorients itself and returns the input grid

    def task_ids(self) -> list[int]:
        """Task ids of the configured mode (``fast`` -> 297, normal -> 291–295; ``roi_subset`` adds the 6 mm
        model 298 that TotalSegmentator uses to crop)."""
        ids = [297] if self.options.get("fast") else [291, 292, 293, 294, 295]
        return ids + [298] if self.options.get("roi_subset") or getattr(self, "_text", None) else ids

    def resolve_weights(self):
        prepare_totalseg_env(self.task_ids())
        return None, totalseg_home()

    def load(self, weights_path: Path, device: str) -> None:
        try:
            import totalsegmentator.python_api  # noqa: F401
        except ImportError as exc:
            raise DependencyError("TotalSegmentator is not installed", "pip install 'organsegbench[models]'") from exc

    def predict(self, volume: np.ndarray, prompts: PromptSet, ctx: RunContext) -> tuple[np.ndarray, dict[int, str]]:
        """Run TotalSegmentator on the input image itself (``ctx.image``); out-of-memory handling (CPU retry or a
        clear error) is the base class's :meth:`run_with_fallback`."""
        prepare_totalseg_env(self.task_ids())  # per run: text prompts may add the cropping model (298)
        from organsegbench.models import weights as W
        from organsegbench.models.pickle_scan import check_model_folder

        ctx.notes["checkpoint_scan"] = {  # nnU-Net unpickles them with weights_only=False: refuse unsafe ones
            TASK_WEIGHTS[t]: check_model_folder(W.cache_path(TASK_WEIGHTS[t]), self.options.get("trust_checkpoints"))
            for t in self.task_ids()}
        return self.run_totalseg(ctx.image, ctx)

    def check_prompts(self, prompts: PromptSet, output: str, slice_range):
        prompts = super().check_prompts(prompts, output, slice_range)
        self._text = list(prompts.text) or None
        return prompts

    def _device(self, device: str) -> str:
        return "gpu" if device == "cuda" else ("gpu:" + device.split(":")[1] if device.startswith("cuda:") else device)

    def run_totalseg(self, image: Image, ctx: RunContext) -> tuple[np.ndarray, dict[int, str]]:
        """Write the image to a temporary NIfTI, run TotalSegmentator's Python API, read the label map back."""
        import SimpleITK as sitk
        from totalsegmentator.map_to_binary import class_map
        from totalsegmentator.python_api import totalsegmentator

        ctx.check()
        roi = self.options.get("roi_subset") or getattr(self, "_text", None)
        if roi is not None:
            known = set(class_map["total"].values())
            bad = [r for r in roi if r not in known]
            if bad:
                from organsegbench.errors import unknown_name

                raise unknown_name("TotalSegmentator structure", bad[0], sorted(known))
        with tempfile.TemporaryDirectory(prefix="osb_totalseg_") as tmp:
            src = Path(tmp) / "image.nii.gz"
            dst = Path(tmp) / "seg.nii.gz"
            sitk.WriteImage(image.to_sitk(), str(src))
            totalsegmentator(src, dst, ml=True, fast=bool(self.options.get("fast")), roi_subset=roi,
                             device=self._device(ctx.device), quiet=True, nr_thr_resamp=1, nr_thr_saving=1,
                             statistics=False)
            seg = sitk.ReadImage(str(dst))
            arr = sitk.GetArrayFromImage(seg)
        ctx.check()
        if arr.shape != image.shape:
            raise OrganSegBenchError(f"TotalSegmentator returned shape {arr.shape} for an image of shape {image.shape}")
        names = {int(k): v for k, v in class_map["total"].items()}
        present = {int(v) for v in np.unique(arr) if v}
        ctx.notes["mode"] = "fast" if self.options.get("fast") else "normal"
        if roi is not None:
            ctx.notes["roi_subset"] = list(roi)
            names = {k: v for k, v in names.items() if v in roi}
        ctx.notes["labels_present"] = len(present)
        return arr.astype(np.uint16), names

    def provenance(self, prompts, ctx, frame):
        out = super().provenance(prompts, ctx, frame)
        from organsegbench.models import weights as W

        out["task_weights"] = {TASK_WEIGHTS[t]: W.record(TASK_WEIGHTS[t]) for t in self.task_ids()}
        out["usage_statistics_sent"] = os.environ.get("ORGANSEGBENCH_TOTALSEG_USAGE_STATS", "0") == "1"
        return out
