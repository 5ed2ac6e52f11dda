"""Benchmark: latency of one more box on an already encoded slice — a new process per box (how one-shot extensions,
and this module before the kept worker, run a model) against the kept-loaded worker (``organsegbench serve``).

Both sides get the same SAM checkpoint at real ViT-B size (random weights written to a temporary file), the same
512×512×N CT-like volume and the same boxes; the slice is encoded once beforehand and both read its embedding from
the disk cache, so the difference is process start, imports, checkpoint load and hashing, volume read and output
write against a decode inside a running process. Per-box wall time, median of the boxes, is the figure; the ratio
is one-shot / worker.

Run: ``python benchmarks/interactive.py [--boxes 5] [--device cpu|cuda] [--slices 40]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boxes", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--slices", type=int, default=40, help="slices of the 512x512 volume (default 40)")
    args = ap.parse_args()

    import numpy as np
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    from organsegbench.io import write_image
    from organsegbench.io.image import Image
    from organsegbench.prompts import Box2D, PromptSet
    from organsegbench.runner import BackgroundProcess, engine_command, engine_environment
    from organsegbench.serve import parse_reply

    tmp = Path(tempfile.mkdtemp(prefix="osb_interactive_"))
    env = engine_environment({**os.environ, "ORGANSEGBENCH_CACHE": str(tmp / "cache")})
    torch.manual_seed(0)
    sam = Sam(image_encoder=ImageEncoderViT(depth=12, embed_dim=768, img_size=1024, mlp_ratio=4,
                                            norm_layer=torch.nn.LayerNorm, num_heads=12, patch_size=16,
                                            qkv_bias=True, use_rel_pos=True, global_attn_indexes=(2, 5, 8, 11),
                                            window_size=14, out_chans=256),
              prompt_encoder=PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024),
                                           mask_in_chans=16),
              mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(
                  depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8), transformer_dim=256,
                  iou_head_depth=3, iou_head_hidden_dim=256))
    weights = tmp / "sam_vit_b_random.pth"
    torch.save(sam.state_dict(), weights)
    del sam
    rng = np.random.default_rng(0)
    vol = (rng.normal(40, 30, (args.slices, 512, 512))).astype(np.int16)
    ct = tmp / "ct.nii.gz"
    write_image(Image(vol, spacing=(0.8, 0.8, 2.5)), ct)
    k = args.slices // 2
    boxes = [(k, 100 + 7 * i, 120 + 5 * i, 300 + 3 * i, 330 - 4 * i) for i in range(args.boxes)]
    base = ["--model", "sam", "--weights", str(weights), "--device", args.device]
    print(f"machine: {platform.processor() or platform.machine()}, cores {len(os.sched_getaffinity(0))}, "
          f"device {args.device}, load average {os.getloadavg()[0]:.1f}; volume {vol.shape}, SAM ViT-B "
          f"({weights.stat().st_size / 1e6:.0f} MB, random weights)")

    t = time.perf_counter()  # encode the slice once: both sides then read it from the disk cache
    subprocess.run(engine_command("segment", ct, *base, "--box", ",".join(map(str, boxes[0])), "--no-progress",
                                  "--out", tmp / "warm.nii.gz"), env=env, check=True, capture_output=True)
    print(f"first box, slice encoded and cached: {time.perf_counter() - t:.2f} s (one-shot process)")

    one_shot = []
    for i, b in enumerate(boxes):
        t = time.perf_counter()
        subprocess.run(engine_command("segment", ct, *base, "--box", ",".join(map(str, b)), "--no-progress",
                                      "--out", tmp / f"one_{i}.nii.gz"), env=env, check=True, capture_output=True)
        one_shot.append(time.perf_counter() - t)

    proc = BackgroundProcess(engine_command("serve", *base), env=env, interactive=True)
    proc.start()

    def reply(timeout: float = 600.0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in proc.poll():
                r = parse_reply(line)
                if r is not None:
                    return r
            time.sleep(0.002)
        raise RuntimeError("no reply from the worker:\n" + "\n".join(proc.log[-20:]))

    def ask(i: int, b: tuple) -> dict:
        ps = PromptSet(boxes=[Box2D(*b, label=1, name="liver")])
        proc.send(json.dumps({"id": str(i), "op": "segment", "image": str(ct), "prompts": ps.to_dict(),
                              "out": str(tmp / f"srv_{i}.nii.gz")}))
        return reply()

    try:
        t = time.perf_counter()
        reply()  # ready
        ask(-1, boxes[0])  # loads the model, reads the volume and the cached embedding
        print(f"worker start + first box (model load, volume read): {time.perf_counter() - t:.2f} s")
        worker = []
        for i, b in enumerate(boxes):
            t = time.perf_counter()
            r = ask(i, b)
            worker.append(time.perf_counter() - t)
            assert r["ok"] and r["embedding_cache"]["slices_encoded"] == 0, r
        proc.send(json.dumps({"op": "shutdown"}))
        proc.wait(timeout=60)
    finally:
        proc.cancel()
    same = all(np.array_equal(*(np.asarray(__import__("SimpleITK").GetArrayFromImage(
        __import__("SimpleITK").ReadImage(str(tmp / f"{p}_{i}.nii.gz")))) for p in ("one", "srv")))
        for i in range(len(boxes)))
    a, w = statistics.median(one_shot), statistics.median(worker)
    print(f"per box, one-shot process: median {a:.3f} s (min {min(one_shot):.3f}, max {max(one_shot):.3f})")
    print(f"per box, kept worker:      median {w * 1e3:.1f} ms (min {min(worker) * 1e3:.1f}, "
          f"max {max(worker) * 1e3:.1f})")
    print(f"ratio one-shot / worker: {a / w:.0f}x; identical masks: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
