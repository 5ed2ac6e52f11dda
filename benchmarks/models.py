"""Model speed benchmark: slices encoded per second and box-to-mask latency (p50/p95) per model, at real model
sizes with random weights, through the adapters' own encode/decode code paths.

    python benchmarks/models.py --device cuda --out bench_models.json
    python benchmarks/models.py --device cpu --small            # quick CPU smoke run (tiny slice count)

Slices are 512×512 CT-like images (uint8 after the CT window). The anchor, measured in the same run, is the
official ``segment_anything.SamPredictor.set_image`` one slice at a time with the same ViT-B weights; the
``vs anchor`` column is our throughput divided by it. Targets on one H100: SAM ViT-B >= 30 slices/s encoded,
box-to-mask <= 30 ms p95. Timings synchronise CUDA before reading the clock.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SAM_ARCH = {  # ViT-B/L/H as published (segment_anything.build_sam)
    "sam_vit_b": dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    "sam_vit_l": dict(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "sam_vit_h": dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
}
SAM2_CONFIGS = {
    "sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}


def sam_cfg(name: str) -> dict:
    a = SAM_ARCH[name]
    return {**a, "patch": 16, "img_size": 1024, "window_size": 14, "mlp_ratio": 4.0, "out_chans": 256,
            "mask_in_chans": 16, "decoder_depth": 2, "decoder_mlp_dim": 2048, "num_multimask_outputs": 3,
            "iou_head_depth": 3, "iou_head_hidden_dim": 256}


def slices(n: int, size: int = 512, seed: int = 0) -> list[np.ndarray]:
    """CT-like uint8 slices: noisy body ellipse with a bright organ."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    body = ((yy - size / 2) / (size * 0.42)) ** 2 + ((xx - size / 2) / (size * 0.45)) ** 2 <= 1
    organ = ((yy - size * 0.45) / (size * 0.12)) ** 2 + ((xx - size * 0.35) / (size * 0.15)) ** 2 <= 1
    out = []
    for _ in range(n):
        s = np.where(body, 128.0, 0.0) + np.where(organ, 60.0, 0.0) + rng.normal(0, 8, (size, size))
        out.append(np.clip(s, 0, 255).astype(np.uint8))
    return out


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build_adapter(name: str, device: str, batch: int):
    """Adapter with a randomly initialised real-size network attached (no checkpoint file needed)."""
    import torch

    torch.manual_seed(0)
    if name in SAM_ARCH or name == "medsam":
        from organsegbench.models.medsam import MedSamSegmenter
        from organsegbench.models.sam import SamSegmenter, build_sam

        cfg = sam_cfg("sam_vit_b" if name == "medsam" else name)
        seg = (MedSamSegmenter if name == "medsam" else SamSegmenter)(device=device, batch_size=batch)
        seg.model, seg.arch = build_sam(cfg).eval().to(device), cfg
        if name != "medsam":
            from segment_anything import SamPredictor

            seg.predictor = SamPredictor(seg.model)
    else:
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        from organsegbench.models.sam2 import Sam2Segmenter

        seg = Sam2Segmenter(device=device, batch_size=batch)
        seg.model = build_sam2(SAM2_CONFIGS[name], None, device=device)
        seg.predictor = SAM2ImagePredictor(seg.model)
    seg._loaded_on = seg.device = device
    return seg


def bench_model(name: str, device: str, batch: int, n_slices: int, n_decode: int, amp: str | None) -> dict:
    import contextlib

    import torch

    from organsegbench.prompts import Box2D

    seg = build_adapter(name, device, batch)
    data = slices(n_slices)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp == "bf16" and device.startswith("cuda") \
        else contextlib.nullcontext()
    with torch.inference_mode(), ctx:
        seg.encode(data[:batch], device)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        embs = []
        for i in range(0, n_slices, batch):
            embs += seg.encode(data[i:i + batch], device)
        sync(device)
        enc_s = time.perf_counter() - t0
        box = Box2D(0, 120, 150, 260, 330)
        seg.decode(embs[0], data[0].shape, [box], [], device)
        lat = []
        for r in range(n_decode):
            sync(device)
            t = time.perf_counter()
            seg.decode(embs[r % len(embs)], data[0].shape, [box], [], device)
            sync(device)
            lat.append((time.perf_counter() - t) * 1000)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    del seg
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return {"model": name, "device": device, "batch": batch, "slices": n_slices, "amp": amp or "fp32",
            "slices_per_s": n_slices / enc_s, "box_to_mask_ms_p50": float(np.percentile(lat, 50)),
            "box_to_mask_ms_p95": float(np.percentile(lat, 95)), "peak_gpu_gib": peak}


VIDEO = {  # name -> (adapter module:class, config, overrides)
    "sam2-video(sam2.1_hiera_tiny)": ("sam2:Sam2VideoSegmenter", "configs/sam2.1/sam2.1_hiera_t.yaml", []),
    "medsam2(512)": ("medsam2:MedSam2Segmenter", "configs/sam2.1/sam2.1_hiera_t.yaml",
                     ["++model.image_size=512", "++model.memory_attention.layer.self_attention.feat_sizes=[32,32]",
                      "++model.memory_attention.layer.cross_attention.feat_sizes=[32,32]"]),
}


def bench_video(name: str, device: str, n_frames: int) -> dict:
    """Key-slice box propagated both ways through ``n_frames`` slices by the video adapter: frames/s."""
    import importlib

    import torch
    from sam2.build_sam import build_sam2_video_predictor

    from organsegbench.models.base import RunContext
    from organsegbench.prompts import Box2D, PromptSet

    target, config, overrides = VIDEO[name]
    mod, cls = target.split(":")
    seg = getattr(importlib.import_module(f"organsegbench.models.{mod}"), cls)(device=device)
    torch.manual_seed(0)
    seg.predictor = build_sam2_video_predictor(config, None, device=device, hydra_overrides_extra=overrides)
    seg._loaded_on = seg.device = device
    vol = np.stack(slices(n_frames))
    prompts = PromptSet(boxes=[Box2D(n_frames // 2, 120, 150, 260, 330)])
    seg.predict(vol[:2], PromptSet(boxes=[Box2D(0, 120, 150, 260, 330)]), RunContext(device=device, batch_size=1))
    sync(device)
    t0 = time.perf_counter()
    seg.predict(vol, prompts, RunContext(device=device, batch_size=1))
    sync(device)
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    del seg
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return {"model": name, "device": device, "frames": n_frames, "frames_per_s": n_frames / dt,
            "peak_gpu_gib": peak}


def bench_anchor(device: str, n_slices: int) -> float:
    """Official SamPredictor.set_image, one slice at a time (ViT-B, random weights): slices/s."""
    import torch
    from segment_anything import SamPredictor

    from organsegbench.models.sam import build_sam

    torch.manual_seed(0)
    pred = SamPredictor(build_sam(sam_cfg("sam_vit_b")).eval().to(device))
    data = [np.repeat(s[..., None], 3, axis=2) for s in slices(n_slices)]
    pred.set_image(data[0])
    sync(device)
    t0 = time.perf_counter()
    for s in data:
        pred.set_image(s)
    sync(device)
    return n_slices / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda (default auto)")
    ap.add_argument("--models", default=None, help="comma list (default: all SAM-family models; --small: vit_b+tiny)")
    ap.add_argument("--batch", type=int, default=None, help="slices per encoder batch (default 8 GPU, 1 CPU)")
    ap.add_argument("--slices", type=int, default=None, help="slices to encode (default 64 GPU, 2 CPU)")
    ap.add_argument("--decodes", type=int, default=None, help="box-to-mask repetitions (default 200 GPU, 5 CPU)")
    ap.add_argument("--amp", choices=["bf16"], default=None, help="autocast on CUDA (default fp32, as SamPredictor)")
    ap.add_argument("--video-frames", type=int, default=None,
                    help="slices for the video-propagation rows (default 64 GPU, 3 CPU; 0 = skip)")
    ap.add_argument("--small", action="store_true", help="quick run (defaults to on for CPU)")
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args(argv)

    import torch

    from organsegbench.models.base import pick_device

    device = pick_device(args.device)
    small = args.small or device == "cpu"
    batch = args.batch or (1 if small else 8)
    n = args.slices or (2 if small else 64)
    reps = args.decodes or (5 if small else 200)
    default = ["sam_vit_b", "sam2.1_hiera_tiny"] if small else [*SAM_ARCH, "medsam", *SAM2_CONFIGS]
    names = args.models.split(",") if args.models else default
    rows = []
    anchor = bench_anchor(device, n)
    for name in names:
        try:
            rows.append(bench_model(name, device, batch, n, reps, args.amp))
        except Exception as exc:  # keep going: one model running out of memory must not hide the others
            rows.append({"model": name, "device": device, "error": f"{type(exc).__name__}: {exc}"})
        print(f"done {name}", file=sys.stderr)
    frames = args.video_frames if args.video_frames is not None else (3 if small else 64)
    video_rows = []
    for name in (VIDEO if frames else []):
        try:
            video_rows.append(bench_video(name, device, frames))
        except Exception as exc:
            video_rows.append({"model": name, "device": device, "error": f"{type(exc).__name__}: {exc}"})
        print(f"done {name}", file=sys.stderr)
    hdr = f"{'model':24s} {'batch':>5s} {'slices/s':>9s} {'vs anchor':>9s} {'p50 ms':>8s} {'p95 ms':>8s} {'GiB':>6s}"
    print(f"device {device} ({torch.cuda.get_device_name(0) if device.startswith('cuda') else platform.processor()}),"
          f" torch {torch.__version__}, {n} slices 512x512, {reps} decodes; anchor SamPredictor ViT-B "
          f"{anchor:.2f} slices/s")
    print(hdr)
    for r in rows:
        if "error" in r:
            print(f"{r['model']:24s} ERROR {r['error']}")
            continue
        gib = f"{r['peak_gpu_gib']:.1f}" if r["peak_gpu_gib"] is not None else "-"
        print(f"{r['model']:24s} {r['batch']:5d} {r['slices_per_s']:9.2f} {r['slices_per_s'] / anchor:9.2f} "
              f"{r['box_to_mask_ms_p50']:8.1f} {r['box_to_mask_ms_p95']:8.1f} {gib:>6s}")
    if video_rows:
        print(f"{'video model':32s} {'frames':>6s} {'frames/s':>9s} {'GiB':>6s}")
    for r in video_rows:
        if "error" in r:
            print(f"{r['model']:32s} ERROR {r['error']}")
            continue
        gib = f"{r['peak_gpu_gib']:.1f}" if r["peak_gpu_gib"] is not None else "-"
        print(f"{r['model']:32s} {r['frames']:6d} {r['frames_per_s']:9.2f} {gib:>6s}")
    if args.out:
        Path(args.out).write_text(json.dumps({"anchor_sampredictor_vit_b_slices_per_s": anchor, "rows": rows,
                                              "video_rows": video_rows,
                                              "torch": torch.__version__, "device": device}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
