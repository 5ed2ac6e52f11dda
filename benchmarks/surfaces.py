"""Benchmark: signed surface distances between two ~10⁶-vertex surfaces, vs a seed-style per-point loop.

Builds two voxel-derived sphere surfaces at native resolution (1 mm voxels; reference radius 228 mm, prediction
radius 230 mm shifted 1.5 mm, so errors of 0.5–3.5 mm like a real comparison), ≈10⁶ vertices each, then times

* ``organsegbench.surfaces.distance`` in both directions (search-structure build + queries), methods ``exact``
  (k = 1 and k = 3 candidate vertices) and ``vertex``;
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
from organsegbench.surfaces.distance import SurfaceDistance  # noqa: E402
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
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    n, c = 470, 234.0
    ref = surface_from_labelmap(Image(ball(n, (c, c, c), 228.0)))
    pred = surface_from_labelmap(Image(ball(n, (c, c, c + 1.5), 230.0)))
    print(f"machine: {platform.processor() or platform.machine()}, cores available: "
          f"{len(os.sched_getaffinity(0))}, workers used: {args.workers}")
    print(f"reference surface: {ref.n_points:,} vertices, prediction surface: {pred.n_points:,} vertices")

    def both(method: str, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        p2r = SurfaceDistance(ref).signed_distance(pred.points, method=method, k=k, workers=args.workers)
        r2p = -SurfaceDistance(pred).signed_distance(ref.points, method=method, k=k, workers=args.workers)
        return p2r, r2p

    t_build, _ = timed(lambda: (SurfaceDistance(ref), SurfaceDistance(pred)), args.repeats)
    print(f"search structures (KD-tree, adjacency, normals) for both surfaces: {t_build:.3f} s")
    results = {}
    for label, method, k in [("exact k=1", "exact", 1), ("exact k=3", "exact", 3), ("vertex", "vertex", 1)]:
        t, (p2r, r2p) = timed(lambda m=method, kk=k: both(m, kk), args.repeats)
        results[label] = (t, p2r, r2p)
        print(f"{label:10s}: both directions {t:.3f} s (median of {args.repeats}); pred->ref mean "
              f"{p2r.mean():+.3f} mm, |max| {np.abs(p2r).max():.3f} mm; ref->pred mean {r2p.mean():+.3f} mm")
    e1, e3 = results["exact k=1"], results["exact k=3"]
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
