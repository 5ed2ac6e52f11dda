"""SAT (Zhao et al., "One Model to Rule them All" / "Large-Vocabulary Segmentation for Medical Images with Text
Prompts"): text-prompted 3D segmentation, called as an **external component through its own entry point**.

SAT's code has no licence file, so OrganSegBench neither bundles nor imports it. The user installs SAT and gives its
command (``sat_command`` option or ``ORGANSEGBENCH_SAT_COMMAND``), for example::

    torchrun --nproc_per_node=1 inference.py --vision_backbone UNET-L --checkpoint SAT_Pro.pth
        --text_encoder ours --text_encoder_checkpoint text_encoder.pth --max_queries 256 --batchsize_3d 1

run in ``sat_dir`` (``ORGANSEGBENCH_SAT_DIR``). The adapter writes the image as NIfTI and a one-line jsonl
(``image``, ``label``, ``modality``, ``dataset``), appends ``--datasets_jsonl`` and ``--rcd_dir``, and reads SAT's
per-label masks ``<rcd_dir>/<dataset>/seg_<id>/<label>.nii.gz``.

SAT writes its outputs with an identity affine on its own processed grid: MONAI ``Orientation(RAS)`` →
``Spacing(1, 1, 3) mm`` → ``CropForeground(image > 0)``. The adapter recovers that grid by running the same MONAI
transforms on the same file (MONAI tracks the affine through the crop) and resamples each mask (nearest neighbour)
back onto the input image. Per-label files are used because SAT's aggregated file sums overlapping labels.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from organsegbench.errors import DependencyError, OrganSegBenchError
from organsegbench.io.image import Image
from organsegbench.models.base import BaseSegmenter, RunContext
from organsegbench.models.protocol import Capabilities
from organsegbench.prompts import PromptSet

SAT_SPACING = (1.0, 1.0, 3.0)


def sat_grid_affine(nifti: Path) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Affine (RAS, 4x4) and shape (h, w, d) of SAT's processed grid for ``nifti`` (SAT's MONAI transforms)."""
    try:
        import monai.transforms as T
    except ImportError as exc:
        raise DependencyError("mapping SAT outputs back needs MONAI (SAT's own preprocessing library)",
                              "pip install monai") from exc
    tr = T.Compose([T.LoadImaged(keys=["image"]), T.EnsureChannelFirstd(keys=["image"]),
                    T.Orientationd(axcodes="RAS", keys=["image"]),
                    T.Spacingd(keys=["image"], pixdim=SAT_SPACING, mode="bilinear"),
                    T.CropForegroundd(keys=["image"], source_key="image")])
    img = tr({"image": str(nifti)})["image"]
    return np.asarray(img.affine, dtype=float), tuple(int(v) for v in img.shape[1:])


def sat_mask_to_input(mask_hwd: np.ndarray, affine_ras: np.ndarray, reference: Image) -> np.ndarray:
    """A SAT mask ``(h, w, d)`` on the grid ``affine_ras`` -> array ``(z, y, x)`` on ``reference`` (nearest)."""
    import SimpleITK as sitk

    lin = affine_ras[:3, :3]
    spacing = np.linalg.norm(lin, axis=0)
    flip = np.diag([-1.0, -1.0, 1.0])  # RAS -> LPS
    img = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(mask_hwd.astype(np.uint8), (2, 1, 0))))
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetDirection(tuple((flip @ (lin / spacing)).ravel().tolist()))
    img.SetOrigin(tuple((flip @ affine_ras[:3, 3]).tolist()))
    ref = reference.to_sitk()
    out = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(out).astype(bool)


class SatSegmenter(BaseSegmenter):
    """SAT through its own command line; outputs mapped back onto the input grid."""

    capabilities = Capabilities(
        name="sat", dims="3d", prompt_kinds=frozenset({"text"}), modalities=("CT", "MR", "PET"),
        gpu="required", code_licence="none (no licence file; the user installs SAT)", weights_licence="unknown",
        weights=(), package=None,
        description="SAT: text-prompted 3D segmentation, run through its own entry point (user-installed)",
    )
    reorient = False  # SAT reorients itself; outputs are mapped back through its recovered grid

    def check_prompts(self, prompts: PromptSet, output: str, slice_range):
        self._raw_text = [t.strip() for t in prompts.text]
        return super().check_prompts(prompts, output, slice_range)

    def resolve_weights(self):
        cmd = self.options.get("sat_command") or os.environ.get("ORGANSEGBENCH_SAT_COMMAND")
        if not cmd:
            raise DependencyError(
                "SAT is an external component and no SAT command was configured",
                "install SAT (github.com/zhaoziheng/SAT) and set ORGANSEGBENCH_SAT_COMMAND to its inference command "
                "(and ORGANSEGBENCH_SAT_DIR to its folder), or pass sat_command=…",
            )
        self.sat_command = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        self.sat_dir = self.options.get("sat_dir") or os.environ.get("ORGANSEGBENCH_SAT_DIR")
        return None, None

    def ensure_loaded(self, device: str) -> None:
        if self._loaded_on is None:
            self.resolve_weights()
        self._loaded_on = self.device = device

    def load(self, weights_path, device):  # pragma: no cover - nothing to load in-process
        pass

    def predict(self, volume: np.ndarray, prompts: PromptSet, ctx: RunContext) -> tuple[np.ndarray, dict[int, str]]:
        """Run SAT on the input image itself (``ctx.image``), in a child process of its own."""
        return self.run_sat(ctx.image, prompts, ctx)

    def run_sat(self, image: Image, prompts: PromptSet, ctx: RunContext) -> tuple[np.ndarray, dict[int, str]]:
        """Run SAT in a temporary folder and map its per-label masks back (later labels win overlaps)."""
        import SimpleITK as sitk

        terms = self.options.get("sat_terms") or self._raw_text
        modality = str(self.options.get("modality", "CT")).lower()
        with tempfile.TemporaryDirectory(prefix="osb_sat_") as tmp:
            tmp_p = Path(tmp)
            src = tmp_p / "case.nii.gz"
            sitk.WriteImage(image.to_sitk(), str(src))
            job = tmp_p / "job.jsonl"
            job.write_text(json.dumps({"image": str(src), "label": terms, "modality": modality,
                                       "dataset": "organsegbench"}) + "\n")
            rcd = tmp_p / "results"
            cmd = [*self.sat_command, "--datasets_jsonl", str(job), "--rcd_dir", str(rcd)]
            self._run(cmd, ctx)
            out_dir = rcd / "organsegbench" / "seg_case"
            affine, shape = sat_grid_affine(src)
            lab = np.zeros(image.shape, dtype=np.uint16)
            names = {}
            for j, (term, canon) in enumerate(zip(terms, prompts.text, strict=True), start=1):
                f = out_dir / f"{term.lower()}.nii.gz"
                if not f.is_file():
                    raise OrganSegBenchError(f"SAT wrote no mask for {term!r} ({f.name} missing in {out_dir})",
                                             "check that the term is in SAT's vocabulary (Table 12 of its paper)")
                m = sitk.GetArrayFromImage(sitk.ReadImage(str(f)))  # (d, w, h) as SimpleITK reads identity NIfTI
                m = np.transpose(m, (2, 1, 0)) > 0.5
                if m.shape != shape:
                    raise OrganSegBenchError(f"SAT mask {f.name} has shape {m.shape}; its recovered grid is {shape}",
                                             "SAT's preprocessing differs from the version this adapter follows")
                lab[sat_mask_to_input(m, affine, image)] = j
                names[j] = canon
        ctx.notes["sat_grid"] = {"affine_ras": np.round(affine, 4).tolist(), "shape_hwd": list(shape)}
        ctx.notes["sat_terms"] = list(terms)
        return lab, names

    def _run(self, cmd: list[str], ctx: RunContext) -> None:
        """Run SAT; poll for cancellation (the process is killed and the temporary folder removed)."""
        ctx.notes["sat_command"] = " ".join(shlex.quote(c) for c in cmd)
        proc = subprocess.Popen(cmd, cwd=self.sat_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while proc.poll() is None:
            if ctx.cancel is not None and ctx.cancel.cancelled:
                proc.kill()
                proc.wait()
                ctx.check()
            time.sleep(0.1)
        log = proc.stdout.read() if proc.stdout else ""
        if proc.returncode != 0:
            raise OrganSegBenchError(f"SAT exited with code {proc.returncode}: {log.strip()[-800:]}",
                                     "run the SAT command by hand to see its full output")

    def provenance(self, prompts, ctx, frame):
        out = super().provenance(prompts, ctx, frame)
        out["external_component"] = "SAT (user-installed, unlicensed code; not bundled)"
        return out
