"""MOOSE (moosez) through its Python API ``moosez.moose(SimpleITK.Image, model, accelerator=…)`` with its own
nnU-Net loader pointed at our weights cache.

MOOSE keeps its models inside its installed package by default and downloads there. We set
``moosez.system.MODELS_DIRECTORY_PATH`` and the default ``base_directory`` of ``moosez.models.Model`` to
``<cache>/weights/moose_models``, which links to the task folders in our cache, and write the
``model_version.json`` MOOSE checks (a missing or different URL there makes MOOSE delete and re-download the
folder). Missing weights raise our error naming the download/import command.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from organsegbench.config import weights_dir
from organsegbench.errors import DependencyError, OrganSegBenchError
from organsegbench.io.image import Image
from organsegbench.models.base import BaseSegmenter, RunContext
from organsegbench.models.protocol import Capabilities
from organsegbench.prompts import PromptSet

log = logging.getLogger(__name__)


def prepare_moose_env(weights_name: str, root: Path | None = None) -> tuple[str, Path]:
    """Link the cached task folder where MOOSE looks and point MOOSE there; return (moose model id, base dir)."""
    from organsegbench.models import weights as W

    try:
        import moosez.models as mm
        import moosez.system as ms
    except ImportError as exc:
        raise DependencyError("MOOSE is not installed", "pip install 'organsegbench[models]' (moosez)") from exc
    e = W.entry(weights_name)
    model_id = e.extra.get("moose_model", weights_name)
    src = W.require(weights_name, root)
    meta = mm.MODEL_METADATA.get(model_id)
    if meta is None:
        raise OrganSegBenchError(f"MOOSE {mm.__name__} has no model {model_id!r}",
                                 f"known: {', '.join(sorted(mm.MODEL_METADATA))}")
    version = src / "model_version.json"
    if not version.is_file() or json.loads(version.read_text()).get("url") != meta[mm.KEY_URL]:
        version.write_text(json.dumps({"url": meta[mm.KEY_URL], "written_by": "organsegbench"}))
    base = (root or weights_dir()) / "moose_models"
    base.mkdir(parents=True, exist_ok=True)
    link = base / meta[mm.KEY_FOLDER_NAME]
    if link.is_symlink() and link.resolve() != src.resolve():
        link.unlink()
    if not link.exists():
        link.symlink_to(src, target_is_directory=True)
    ms.MODELS_DIRECTORY_PATH = str(base)
    defaults = list(mm.Model.__init__.__defaults__ or ())
    if defaults:
        defaults[-1] = str(base)
        mm.Model.__init__.__defaults__ = tuple(defaults)
    return model_id, base


class MooseSegmenter(BaseSegmenter):
    """MOOSE 3 (Shiyam Sundar et al.), automatic CT organ segmentation (``clin_ct_organs``)."""

    capabilities = Capabilities(
        name="moose", dims="3d", prompt_kinds=frozenset({"none"}), modalities=("CT",), gpu="recommended",
        code_licence="see https://github.com/ENHANCE-PET/MOOSE", weights_licence="unknown",
        weights=("moose_clin_ct_organs",), vocabulary="moose_clin_ct_organs", package="moosez",
        description="MOOSE 3 (nnU-Net) clinical CT organs",
    )
    reorient = False  # MOOSE works on the SimpleITK image as given and returns its grid

    def resolve_weights(self):
        name = str(self.weights_arg or self.capabilities.weights[0])
        self.moose_model, _ = prepare_moose_env(name)
        from organsegbench.models import weights as W

        return name, W.cache_path(name)

    def load(self, weights_path: Path, device: str) -> None:
        pass  # MOOSE loads its nnU-Net predictor per call

    def predict(self, volume: np.ndarray, prompts: PromptSet, ctx: RunContext) -> tuple[np.ndarray, dict[int, str]]:
        """Run MOOSE on the input image itself (``ctx.image``); out-of-memory handling is the base class's.
        nnU-Net unpickles the checkpoints with ``weights_only=False``, so they are scanned first."""
        from organsegbench.models import weights as W
        from organsegbench.models.pickle_scan import check_model_folder

        name = str(self.weights_arg or self.capabilities.weights[0])
        ctx.notes["checkpoint_scan"] = {name: check_model_folder(W.cache_path(name),
                                                                 self.options.get("trust_checkpoints"))}
        return self.run_moose(ctx.image, ctx)

    def run_moose(self, image: Image, ctx: RunContext) -> tuple[np.ndarray, dict[int, str]]:
        """Call ``moosez.moose`` on a SimpleITK image and map the result onto the input grid."""
        import SimpleITK as sitk
        from moosez import moose

        ctx.check()
        accel = "cuda" if ctx.device.startswith("cuda") else ctx.device
        ref = sitk.Cast(image.to_sitk(), sitk.sitkFloat32)
        segs, used = moose(ref, self.moose_model, accelerator=accel)
        seg = segs[0]
        if seg.GetSize() != ref.GetSize() or seg.GetSpacing() != ref.GetSpacing():
            seg = sitk.Resample(seg, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, seg.GetPixelID())
            ctx.notes["resampled_to_input"] = True
        ctx.check()
        names = {int(k): str(v) for k, v in used[0].organ_indices.items() if int(k) != 0}
        return sitk.GetArrayFromImage(seg).astype(np.uint16), names

