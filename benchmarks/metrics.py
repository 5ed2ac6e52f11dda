"""Benchmark of organsegbench.metrics against medpy (anchor, same run) and surface-distance; never run by tests.

Cases (seeded, synthetic):

* **liver**: 512×512×300 voxels at 0.7×0.7×1.5 mm (array z, y, x = 300, 512, 512), a ~1.5 L ellipsoid; the
  prediction is shifted (1, 2, −2 voxels), has smooth boundary noise and a far false-positive island (~14 mL,
  ~190 mm away). Timed: HD + HD95 + ASSD + NSD(2 mm). Anchors: medpy (its surface distances computed once and
  reused for hd/hd95/assd — the cheapest way to get all three from medpy), surface-distance for NSD.
* **117 labels**: a TotalSegmentator-style map pair (117 ellipsoids of 2 mL – 1.5 L, shifted and noisy predictions,
  two missed structures, islands on 12 structures). Timed: :func:`evaluate_pair` with every metric. Checked
  against medpy and surface-distance on each label's padded union bounding box (exactly equal to running them on
  the whole volume; see the notes in ``docs/metrics.md``).

Each timed computation runs in a fresh subprocess that loads the masks from ``.npy`` first. "wall s" is the best of
``--repeat`` runs (wall clock), "CPU s" the process CPU time of the best run (less sensitive to other load on
the machine); "RSS+ MB" is the largest RSS (sampled every 2 ms) minus the RSS after loading; for our runs
"peak MB" is the tracemalloc peak of one more run (numpy buffers are traced; for the anchors it repeats RSS+).
Usage::

    python benchmarks/metrics.py [--workers 1] [--repeat 3] [--skip-medpy]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

SHAPE = (300, 512, 512)
SPACING = (1.5, 0.7, 0.7)
REL = 1e-6


def _ellipsoid(out: np.ndarray, label: int, centre_vox: np.ndarray, semi_mm: np.ndarray, rng: np.random.Generator,
               noise: float) -> None:
    """Paint an ellipsoid with smooth random boundary noise (relative amplitude ``noise``) into ``out``."""
    sp = np.asarray(SPACING)
    half = np.ceil(semi_mm * (1 + 2 * noise) / sp).astype(int) + 1
    lo = np.maximum(centre_vox - half, 0)
    hi = np.minimum(centre_vox + half + 1, SHAPE)
    if np.any(hi <= lo):
        return
    grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    r2 = sum(((g - c) * s / a) ** 2 for g, c, s, a in zip(grids, centre_vox, sp, semi_mm, strict=True))
    if noise:
        coarse = rng.standard_normal(tuple(max(2, int(n) // 12) for n in hi - lo))
        field = ndi.zoom(coarse, [n / c for n, c in zip(hi - lo, coarse.shape, strict=True)], order=1)
        r2 = r2 - noise * field[tuple(slice(0, int(n)) for n in hi - lo)]
    region = out[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    region[r2 <= 1.0] = label


def liver_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Reference and prediction (boolean, 300×512×512) of the liver case."""
    ref = np.zeros(SHAPE, dtype=np.uint8)
    pred = np.zeros(SHAPE, dtype=np.uint8)
    semi = np.array([48.0, 75.0, 100.0])  # z, y, x semi-axes in mm: 4/3·π·abc ≈ 1508 mL
    centre = np.array([150, 250, 220])
    _ellipsoid(ref, 1, centre, semi, rng, 0.0)
    _ellipsoid(pred, 1, centre + np.array([1, 2, -2]), semi, rng, 0.15)
    _ellipsoid(pred, 1, np.array([70, 400, 420]), np.array([15.0, 15.0, 15.0]), rng, 0.0)  # far island
    return ref.view(bool), pred.view(bool)


def multilabel_case(rng: np.random.Generator, n_labels: int = 117) -> tuple[np.ndarray, np.ndarray]:
    """A TotalSegmentator-style pair of label maps (uint8, 300×512×512)."""
    ref = np.zeros(SHAPE, dtype=np.uint8)
    pred = np.zeros(SHAPE, dtype=np.uint8)
    extent_mm = np.asarray(SHAPE) * np.asarray(SPACING)
    missed = set(rng.choice(np.arange(1, n_labels + 1), 2, replace=False).tolist())
    islands = set(rng.choice(np.arange(1, n_labels + 1), 12, replace=False).tolist())
    volumes_mm3 = np.sort(np.exp(rng.uniform(np.log(2e3), np.log(1.5e6), n_labels)))[::-1]
    order = rng.permutation(np.arange(1, n_labels + 1))  # label values in random order, painted largest first
    for label, volume_mm3 in zip(order.tolist(), volumes_mm3, strict=True):
        shape_ratio = rng.uniform(0.6, 1.6, 3)
        semi = shape_ratio * (volume_mm3 / (4 / 3 * np.pi * np.prod(shape_ratio))) ** (1 / 3)
        centre_mm = rng.uniform(0.2, 0.8, 3) * extent_mm
        centre = np.round(centre_mm / np.asarray(SPACING)).astype(int)
        _ellipsoid(ref, label, centre, semi, rng, 0.0)
        if label in missed:
            continue
        _ellipsoid(pred, label, centre + rng.integers(-2, 3, 3), semi * rng.uniform(0.93, 1.07, 3), rng, 0.1)
        if label in islands:
            far = np.round(rng.uniform(0.1, 0.9, 3) * np.asarray(SHAPE)).astype(int)
            _ellipsoid(pred, label, far, np.full(3, rng.uniform(3.0, 8.0)), rng, 0.0)
    return ref, pred


# --------------------------------------------------------------------------------------------------- subprocesses
def _run_ours_liver(ref: np.ndarray, pred: np.ndarray, workers: int) -> dict[str, float]:
    from organsegbench.metrics import evaluate_pair

    res = evaluate_pair(ref, pred, SPACING, metrics=["hd", "hd95", "assd", "nsd"], nsd_tolerance_mm=2.0,
                        workers=workers)
    return {r.metric: r.value for r in res}


def _run_medpy_liver(ref: np.ndarray, pred: np.ndarray, workers: int) -> dict[str, float]:
    from medpy.metric import binary

    surface_distances = getattr(binary, "__surface_distances")
    d_pr = surface_distances(pred, ref, SPACING, 1)  # what medpy.hd/hd95/assd(pred, ref) compute inside
    d_rp = surface_distances(ref, pred, SPACING, 1)
    return {"hd": float(max(d_pr.max(), d_rp.max())), "hd95": float(np.percentile(np.hstack((d_pr, d_rp)), 95)),
            "assd": float(np.concatenate([d_pr, d_rp]).mean()),
            # MONAI's compute_hausdorff_distance(percentile=95): max of the two directed percentiles
            "hd95_monai_definition": float(max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)))}


def _run_sd_liver(ref: np.ndarray, pred: np.ndarray, workers: int) -> dict[str, float]:
    import surface_distance as sdist

    d = sdist.compute_surface_distances(ref, pred, SPACING)
    return {"nsd": float(sdist.compute_surface_dice_at_tolerance(d, 2.0)),
            "hd95_surface_distance": float(sdist.compute_robust_hausdorff(d, 95))}


def _run_monai_liver(ref: np.ndarray, pred: np.ndarray, workers: int) -> dict[str, float]:
    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    torch.set_num_threads(max(1, workers))
    y = torch.from_numpy(ref)[None, None]
    y_pred = torch.from_numpy(pred)[None, None]
    kw = {"include_background": True, "spacing": list(SPACING)}
    return {"hd": float(compute_hausdorff_distance(y_pred, y, **kw)),
            "hd95": float(compute_hausdorff_distance(y_pred, y, percentile=95, **kw)),
            "assd": float(compute_average_surface_distance(y_pred, y, symmetric=True, **kw)),
            "nsd": float(compute_surface_dice(y_pred, y, [2.0], use_subvoxels=True, **kw))}


def _run_ours_multi(ref: np.ndarray, pred: np.ndarray, workers: int) -> dict[str, float]:
    from organsegbench.metrics import evaluate_pair

    res = evaluate_pair(ref, pred, SPACING, workers=workers)
    return {f"{r.label}/{r.metric}": r.value for r in res}


RUNNERS = {"ours_liver": _run_ours_liver, "medpy_liver": _run_medpy_liver, "sd_liver": _run_sd_liver,
           "monai_liver": _run_monai_liver, "ours_multi": _run_ours_multi}


def _child(kind: str, folder: Path, workers: int, repeat: int) -> None:
    import importlib
    import tracemalloc

    for module in {"monai_liver": ("torch", "monai.metrics")}.get(kind, ("organsegbench.metrics", "scipy.spatial",
                                                                        "medpy.metric.binary", "surface_distance")):
        importlib.import_module(module)  # imports before the baseline: RSS+ then counts data, not code
    ref = np.load(folder / "ref.npy")
    pred = np.load(folder / "pred.npy")
    rss_before = _rss_mb()
    times, cpu = [], []
    with _RssSampler() as sampler:
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            values = RUNNERS[kind](ref, pred, workers)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    rss_growth = max(0.0, sampler.peak - rss_before)
    traced = rss_growth
    if kind.startswith("ours"):  # one more run for the allocation peak (numpy buffers are traced)
        tracemalloc.start()
        RUNNERS[kind](ref, pred, workers)
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    print(json.dumps({"seconds": min(times), "all_seconds": times, "cpu_seconds": min(cpu), "peak_mb": traced,
                      "rss_growth_mb": rss_growth, "values": values}))


class _RssSampler:
    """Samples the process RSS every 2 ms on a thread; ``peak`` is the largest sample (MB)."""

    def __init__(self) -> None:
        import threading

        self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _spawn(kind: str, folder: Path, workers: int = 1, repeat: int = 1) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--folder", str(folder), "--workers", str(workers),
           "--repeat", str(repeat)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------------- checks
def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300) if (a != b) else 0.0


def _check_multilabel(ref: np.ndarray, pred: np.ndarray, ours: dict[str, float], max_crop: int) -> dict:
    """medpy and surface-distance on each label's padded union box (equal to running them on the whole volume:
    the box holds both surfaces, and its 1-voxel background margin or the volume border gives the same erosion)."""
    import surface_distance as sdist
    from medpy.metric import binary

    surface_distances = getattr(binary, "__surface_distances")
    boxes_r, boxes_p = ndi.find_objects(ref), ndi.find_objects(pred)
    out = {"checked": 0, "skipped": 0, "worst": 0.0, "worst_nsd": 0.0, "monai": [], "sd": [], "hd95": []}
    for label in range(1, len(boxes_r) + 1):
        br = boxes_r[label - 1]
        bp = boxes_p[label - 1] if label <= len(boxes_p) else None
        if br is None or bp is None:
            continue
        box = tuple(slice(max(min(a.start, b.start) - 1, 0), min(max(a.stop, b.stop) + 1, n))
                    for a, b, n in zip(br, bp, SHAPE, strict=True))
        if np.prod([s.stop - s.start for s in box]) > max_crop:
            out["skipped"] += 1
            continue
        r, p = ref[box] == label, pred[box] == label
        d_pr = surface_distances(p, r, SPACING, 1)  # medpy.hd/hd95/assd(pred, ref) compute exactly these
        d_rp = surface_distances(r, p, SPACING, 1)
        both = np.hstack((d_pr, d_rp))
        expected = {"hd": max(d_pr.max(), d_rp.max()), "hd95": np.percentile(both, 95),
                    "assd": np.concatenate([d_pr, d_rp]).mean(), "dsc": binary.dc(p, r)}
        for name, value in expected.items():
            out["worst"] = max(out["worst"], _rel(ours[f"{label}/{name}"], float(value)))
        sd = sdist.compute_surface_distances(r, p, SPACING)
        nsd = sdist.compute_surface_dice_at_tolerance(sd, 2.0)
        out["worst_nsd"] = max(out["worst_nsd"], _rel(ours[f"{label}/nsd"], float(nsd)))
        out["hd95"].append(float(expected["hd95"]))
        out["monai"].append(float(max(np.percentile(d_pr, 95), np.percentile(d_rp, 95))))
        out["sd"].append(float(sdist.compute_robust_hausdorff(sd, 95)))
        out["checked"] += 1
    return out


def _describe_diff(name: str, other: list[float], medpy: list[float]) -> str:
    o, m = np.asarray(other), np.asarray(medpy)
    diff = o - m
    rel = diff / np.maximum(m, 1e-12)
    return (f"  {name:28s} minus medpy: median {np.median(diff):+.2f} mm ({np.median(rel):+.0%}), "
            f"90th pct {np.percentile(diff, 90):+.2f} mm, max {diff.max():+.2f} mm ({rel.max():+.0%}), "
            f"min {diff.min():+.2f} mm; larger on {np.mean(diff > 1e-9):.0%} of structures")


def _sample_section() -> None:
    """TotalSegmentator normal vs --fast on its own abdominal CT, when the sample data are already cached."""
    import SimpleITK as sitk

    from organsegbench import sample_data
    from organsegbench.metrics import evaluate_pair

    root = sample_data.sample_root()
    if not (root / sample_data.MARKER).exists():
        print("\n[sample CT] sample data not cached (organsegbench sample-data fetch); skipped")
        return
    data = sample_data.fetch(progress=False)
    imgs = [sitk.ReadImage(str(data.path("abdomen_ct", role))) for role in ("seg_normal", "seg_fast")]
    ref, pred = (sitk.GetArrayFromImage(i) for i in imgs)
    sp = tuple(reversed(imgs[0].GetSpacing()))
    t0, c0 = time.perf_counter(), time.process_time()
    res = evaluate_pair(ref, pred, sp)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    dsc = [r.value for r in res if r.metric == "dsc" and r.defined]
    print(f"\n[sample CT] TotalSegmentator normal vs --fast, {ref.shape[2]}x{ref.shape[1]}x{ref.shape[0]} at "
          f"{sp[2]:g}x{sp[1]:g}x{sp[0]:g} mm: {len({r.label for r in res})} structures, all metrics in {wall:.2f} s "
          f"wall / {cpu:.2f} s CPU; median DSC {np.median(dsc):.3f} (parity with medpy and surface-distance: "
          f"Testing/engine/test_metrics_sample.py)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=1, help="evaluate_pair workers (default 1; 2 is also timed)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions of our runs (the minimum is shown)")
    ap.add_argument("--skip-medpy", action="store_true", help="skip the slow medpy full-volume anchor")
    ap.add_argument("--max-check-voxels", type=int, default=12_000_000,
                    help="largest union box checked against medpy in the 117-label case")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.folder, args.workers, args.repeat)
        return 0

    import importlib.util
    import os

    has_monai = importlib.util.find_spec("monai") is not None and importlib.util.find_spec("torch") is not None
    vox_ml = float(np.prod(SPACING)) / 1000
    print(f"organsegbench.metrics benchmark: {os.cpu_count()} CPU cores visible, workers={args.workers}, "
          f"volume {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} (x,y,z) at {SPACING[2]}x{SPACING[1]}x{SPACING[0]} mm")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ref, pred = liver_case(np.random.default_rng(20261123))
        np.save(folder / "ref.npy", ref)
        np.save(folder / "pred.npy", pred)
        print(f"\n[liver] reference {np.count_nonzero(ref) * vox_ml:.1f} mL, prediction "
              f"{np.count_nonzero(pred) * vox_ml:.1f} mL (shift 1,2,-2 voxels + boundary noise + far island)")
        ours = _spawn("ours_liver", folder, args.workers, args.repeat)
        ours2 = _spawn("ours_liver", folder, 2, args.repeat)
        sd = _spawn("sd_liver", folder)
        rows = [(f"ours  HD+HD95+ASSD+NSD (workers={args.workers})", ours),
                ("ours  HD+HD95+ASSD+NSD (workers=2)", ours2), ("surface-distance NSD (+ its HD95)", sd)]
        monai = _spawn("monai_liver", folder, 2) if has_monai else None
        if monai:
            rows.append(("MONAI HD, HD95, ASSD, NSD (4 calls)", monai))
        medpy = None
        if not args.skip_medpy:
            medpy = _spawn("medpy_liver", folder)
            rows.append(("medpy HD+HD95+ASSD (distances once)", medpy))
        print(f"  {'':38s} {'wall s':>8s} {'CPU s':>8s} {'peak MB':>8s} {'RSS+ MB':>8s}")
        for name, r in rows:
            print(f"  {name:38s} {r['seconds']:8.3f} {r['cpu_seconds']:8.3f} {r['peak_mb']:8.0f} "
                  f"{r['rss_growth_mb']:8.0f}")
        print(f"  ours, all repetitions (s): {', '.join(f'{t:.3f}' for t in ours['all_seconds'])}; workers=2: "
              f"{', '.join(f'{t:.3f}' for t in ours2['all_seconds'])}")
        if medpy:
            print(f"  ratio medpy/ours: time {medpy['seconds'] / ours['seconds']:.0f}x (workers={args.workers}), "
                  f"{medpy['seconds'] / ours2['seconds']:.0f}x (workers=2); CPU time "
                  f"{medpy['cpu_seconds'] / ours['cpu_seconds']:.0f}x; peak memory "
                  f"{medpy['peak_mb'] / max(ours['peak_mb'], 1):.0f}x")
            for k in ("hd", "hd95", "assd"):
                rel = _rel(ours["values"][k], medpy["values"][k])
                print(f"  {k:5s} ours {ours['values'][k]:.9f} mm  medpy {medpy['values'][k]:.9f} mm  "
                      f"rel diff {rel:.1e} {'OK' if rel <= REL else 'MISMATCH'}")
            sdh = sd["values"]["hd95_surface_distance"]
            mon = medpy["values"]["hd95_monai_definition"]
            print(f"  hd95 MONAI definition (max of directed P95, same distances): {mon:.6f} mm "
                  f"({mon - medpy['values']['hd95']:+.3f} mm vs medpy)")
            print(f"  hd95 surface-distance definition (surfel-area weighted, max of directed): {sdh:.6f} mm "
                  f"({sdh - medpy['values']['hd95']:+.3f} mm vs medpy)")
        rel = _rel(ours["values"]["nsd"], sd["values"]["nsd"])
        print(f"  nsd@2mm ours {ours['values']['nsd']:.9f}  surface-distance {sd['values']['nsd']:.9f}  "
              f"rel diff {rel:.1e} {'OK' if rel <= REL else 'MISMATCH'}")
        if monai:
            print(f"  ratio MONAI/ours: time {monai['seconds'] / ours['seconds']:.0f}x (workers={args.workers}), "
                  f"{monai['seconds'] / ours2['seconds']:.0f}x (workers=2)")
            for k in ("hd", "hd95", "assd", "nsd"):
                print(f"  MONAI {k:5s} {monai['values'][k]:.6f}  ours {ours['values'][k]:.6f}  "
                      f"({monai['values'][k] - ours['values'][k]:+.4f})")
        else:
            print("  MONAI: not installed; skipped")

        ref, pred = multilabel_case(np.random.default_rng(117))
        np.save(folder / "ref.npy", ref)
        np.save(folder / "pred.npy", pred)
        print(f"\n[117 labels] {len(np.unique(ref)) - 1} reference / {len(np.unique(pred)) - 1} predicted structures")
        multi = _spawn("ours_multi", folder, args.workers, 1)
        n = len(multi["values"])
        print(f"  ours evaluate_pair, all {len(set(k.split('/')[1] for k in multi['values']))} metrics "
              f"({n} values): {multi['seconds']:.2f} s wall, {multi['cpu_seconds']:.2f} s CPU, "
              f"peak {multi['peak_mb']:.0f} MB traced, RSS +{multi['rss_growth_mb']:.0f} MB")
        t0 = time.perf_counter()
        chk = _check_multilabel(ref, pred, multi["values"], args.max_check_voxels)
        worst = max(chk["worst"], chk["worst_nsd"])
        print(f"  checked {chk['checked']} labels against medpy (hd, hd95, assd, dsc) and surface-distance (nsd) "
              f"on padded union boxes in {time.perf_counter() - t0:.0f} s ({chk['skipped']} with a box > "
              f"{args.max_check_voxels} voxels skipped): max rel diff {chk['worst']:.1e} / {chk['worst_nsd']:.1e} "
              f"{'OK' if worst <= REL else 'MISMATCH'}")
        print("  HD95 definitions over the checked structures:")
        print(_describe_diff("MONAI (max directed P95)", chk["monai"], chk["hd95"]))
        print(_describe_diff("surface-distance (surfels)", chk["sd"], chk["hd95"]))
    _sample_section()
    return 0


if __name__ == "__main__":
    sys.exit(main())
