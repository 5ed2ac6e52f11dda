"""Benchmark: signed surface distances between two ~10⁶-vertex surfaces, vs a seed-style per-point loop.

Builds two voxel-derived sphere surfaces at native resolution (1 mm voxels; reference radius 228 mm, prediction
radius 230 mm shifted 1.5 mm, so errors of 0.5–3.5 mm like a real comparison), ≈10⁶ vertices each, then times

* ``organsegbench.surfaces.distance.both_ways`` (what error maps call; search structures, normals and queries all
  included),
  methods ``vertex`` and ``exact`` (k = 1 and the default k = 3 seed vertices; numba engine when installed, the numpy
  engine timed on a subsample and extrapolated), and the nearest-vertex search alone: scipy's KD-tree against the
  numba engine's uniform grid;
* the seed's approach: for each point, a brute-force nearest neighbour in Python (``min(norm(ref - p))``), timed on a
  seeded random subsample and extrapolated linearly to all points of both directions (stated in the output).

Run: ``python benchmarks/surfaces.py [--repeats 3] [--baseline-points 200] [--workers 2]``.
Timings are wall-clock on the machine at hand; the ratio is the point.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from organsegbench.io.image import Image  # noqa: E402
from organsegbench.surfaces.distance import SurfaceDistance, _numba_kernel, both_ways  # noqa: E402
from organsegbench.surfaces.mesh import surface_from_labelmap  # noqa: E402


def ball(n: int, centre: tuple[float, float, float], radius: float) -> np.ndarray:
    """uint8 ball on an ``n``³ grid with 1 mm voxels (centre in voxel units, array order z, y, x), slice by slice."""
    out = np.zeros((n, n, n), dtype=np.uint8)
    y, x = np.ogrid[:n, :n]
    r2 = (y - centre[1]) ** 2 + (x - centre[2]) ** 2
    for z in range(n):
        out[z] = r2 <= radius**2 - (z - centre[0]) ** 2
    return out


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-points", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--numpy-points", type=int, default=100_000,
                    help="subsample on which the numpy engine is timed and extrapolated")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    n, c = 470, 234.0
    ref = surface_from_labelmap(Image(ball(n, (c, c, c), 228.0)))
    pred = surface_from_labelmap(Image(ball(n, (c, c, c + 1.5), 230.0)))
    print(f"machine: {platform.processor() or platform.machine()}, cores available: "
          f"{len(os.sched_getaffinity(0))}, workers used: {args.workers}, load average at start: "
          f"{os.getloadavg()[0]:.1f} (the cores are shared; timings scale with it)")
    print(f"reference surface: {ref.n_points:,} vertices, prediction surface: {pred.n_points:,} vertices")

    kernel = _numba_kernel()
    if kernel is not None:
        t = time.perf_counter()
        SurfaceDistance(pred).signed_distance(ref.points[:10], engine="numba")
        print(f"numba kernel load/compile + search structures of one surface (once per process): "
              f"{time.perf_counter() - t:.2f} s")
    else:
        print("numba not installed: exact distances use the numpy engine")

    def both(method: str, k: int = 1, engine: str = "auto") -> tuple[np.ndarray, np.ndarray]:
        p2r, r2p, _ = both_ways(ref, pred, method=method, k=k, workers=args.workers, engine=engine)
        return p2r, r2p

    t_tree, _ = timed(lambda: (SurfaceDistance(ref).tree, SurfaceDistance(pred).tree), args.repeats)
    tr, tp = SurfaceDistance(ref).tree, SurfaceDistance(pred).tree
    t_query, _ = timed(lambda: (tr.query(pred.points, workers=args.workers),
                                tp.query(ref.points, workers=args.workers)), args.repeats)
    print(f"scipy KD-trees of both surfaces: {t_tree:.3f} s; nearest-vertex queries both directions: "
          f"{t_query:.3f} s")
    if kernel is not None:
        t_grid, (gr, gp) = timed(lambda: (SurfaceDistance(ref).grid, SurfaceDistance(pred).grid), args.repeats)
        t_gq, _ = timed(lambda: (gr.query(pred.points, 1, args.workers), gp.query(ref.points, 1, args.workers)),
                        args.repeats)
        print(f"vertex grids of both surfaces (numba engine): {t_grid:.3f} s; same queries: {t_gq:.3f} s "
              f"({(t_tree + t_query) / (t_grid + t_gq):.1f}x the KD-tree)")
    results = {}
    runs = [("vertex", "vertex", 1, "auto")]
    if kernel is not None:
        runs += [("exact k=1 (numba)", "exact", 1, "numba"), ("exact k=3 (numba)", "exact", 3, "numba")]
    for label, method, k, engine in runs:
        t, (p2r, r2p) = timed(lambda m=method, kk=k, e=engine: both(m, kk, e), args.repeats)
        results[label] = (t, p2r, r2p)
        print(f"{label:18s}: both directions {t:.3f} s (median of {args.repeats}, search structures included); "
              f"pred->ref mean {p2r.mean():+.3f} mm, |max| {np.abs(p2r).max():.3f} mm; "
              f"ref->pred mean {r2p.mean():+.3f} mm")
    # numpy engine: timed on a subsample and extrapolated (it is the fallback without numba)
    rng_np = np.random.default_rng(args.seed + 1)
    sub_np = rng_np.choice(pred.n_points, size=min(args.numpy_points, pred.n_points), replace=False)
    sd_ref = SurfaceDistance(ref)
    sd_ref.signed_distance(pred.points[:10], engine="numpy", k=3)  # builds the lazy adjacency outside the timing
    t_np, d_np = timed(lambda: sd_ref.signed_distance(pred.points[sub_np], k=3, workers=args.workers,
                                                      engine="numpy"), 1)
    t_np_all = t_np / len(sub_np) * (pred.n_points + ref.n_points)
    print(f"exact k=3 (numpy)  : {len(sub_np):,} points in {t_np:.3f} s, extrapolated to both directions: "
          f"{t_np_all:.1f} s")
    results["exact k=3 (numpy, extrapolated)"] = (t_np_all, None, None)
    if kernel is not None:
        same = np.abs(d_np - results["exact k=3 (numba)"][1][sub_np]).max()
        print(f"numpy vs numba engine on that subsample: max |difference| {same:.1e} mm")
        e1, e3 = results["exact k=1 (numba)"], results["exact k=3 (numba)"]
        diff = max(np.abs(e1[1] - e3[1]).max(), np.abs(e1[2] - e3[2]).max())
        print(f"exact k=1 vs k=3: max |difference| {diff:.2e} mm")

    rng = np.random.default_rng(args.seed)
    sub = rng.choice(pred.n_points, size=args.baseline_points, replace=False)
    ref_pts, pred_pts = ref.points, pred.points

    def seed_loop() -> list[float]:
        out = []
        for i in sub:  # the seed: one brute-force nearest neighbour per point, in Python
            out.append(float(np.min(np.linalg.norm(ref_pts - pred_pts[i], axis=1))))
        return out

    t_loop, loop_d = timed(seed_loop, 1)
    per_point = t_loop / len(sub)
    total_loop = per_point * (pred.n_points + ref.n_points)
    check = np.abs(np.asarray(loop_d) - np.abs(results["vertex"][1][sub])).max()
    print(f"seed-style loop: {len(sub)} points in {t_loop:.3f} s = {per_point * 1e3:.2f} ms/point, "
          f"extrapolated to {pred.n_points + ref.n_points:,} points (both directions, unsigned): {total_loop:,.0f} s")
    print(f"(loop vs vertex method on the subsample: max |difference| {check:.2e} mm)")
    for label, (t, _, _) in results.items():
        print(f"speed-up {label}: {total_loop / t:,.0f}x")
    for label, (t, _, _) in results.items():
        print(f"target <= 1 s for both directions, {label}: {t:.2f} s -> {'met' if t <= 1.0 else 'missed'}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
