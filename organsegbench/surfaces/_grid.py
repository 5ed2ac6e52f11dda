"""Exact k-nearest-vertex search on a uniform grid (compiled with numba; optional ``fast`` extra).

Surface vertices are spread thinly over a 2D manifold, where a uniform grid of cells a few edge lengths wide beats a
KD-tree: a query visits the cells in rings of growing Chebyshev radius around its own cell and stops once the k-th
best distance is no larger than the distance to any cell not yet visited (``r * h`` after ring ``r``; the query lies
inside its own cell). The answer is therefore exact, not approximate; ties are broken towards the smaller vertex
index. Queries that would need more than ``max_ring`` rings (points far from the surface, such as a false-positive
blob centimetres away) are reported unresolved (index -1) and the caller answers them with a KD-tree, so a few
distant points never make the grid walk slow.
"""

from __future__ import annotations

import numpy as np

# numba through _kernels, which points numba's on-disk cache at our cache folder before importing it
from organsegbench.surfaces._kernels import njit, numba, prange

#: most cells in the dense cell table (int64 starts: 8 bytes each, so at most about 64 MB)
MAX_CELLS = 8_000_000


def cell_size(points: np.ndarray, faces: np.ndarray | None) -> float:
    """Preferred grid cell edge (mm): four mean mesh edge lengths (from a sample of at most 20,000 triangles).

    Cells of 2–6 edge lengths all ran within 10 % of each other on a 10⁶-vertex sphere; smaller cells make the
    table large and slow to build. Without faces: spacing of the points spread evenly over the bounding box's faces.
    """
    if faces is not None and len(faces):
        sample = faces[:: max(1, len(faces) // 20000)]
        edge = float(np.linalg.norm(points[sample[:, 0]] - points[sample[:, 1]], axis=1).mean())
    else:
        ext = points.max(axis=0) - points.min(axis=0) + 1e-9
        edge = float(np.sqrt(2 * (ext[0] * ext[1] + ext[1] * ext[2] + ext[0] * ext[2]) / max(len(points), 1)))
    return max(4.0 * edge, 1e-6)


@njit(cache=True, nogil=True)
def build(points, h, max_cells):
    """Counting sort of ``points`` into grid cells: ``(h, origin, dims, starts, order, sorted points)``.

    ``h`` (mm) is enlarged by 25 % steps until the grid has at most ``max_cells`` cells.
    """
    n = points.shape[0]
    origin = np.empty(3)
    top = np.empty(3)
    for a in range(3):
        origin[a] = points[0, a]
        top[a] = points[0, a]
    for i in range(n):
        for a in range(3):
            origin[a] = min(origin[a], points[i, a])
            top[a] = max(top[a], points[i, a])
    dims = np.empty(3, dtype=np.int64)
    while True:
        for a in range(3):
            dims[a] = int((top[a] - origin[a]) / h) + 1
        if dims[0] * dims[1] * dims[2] <= max_cells:
            break
        h *= 1.25
    cell = np.empty(n, dtype=np.int64)
    starts = np.zeros(dims[0] * dims[1] * dims[2] + 1, dtype=np.int64)
    for i in range(n):
        cx = min(int((points[i, 0] - origin[0]) / h), dims[0] - 1)
        cy = min(int((points[i, 1] - origin[1]) / h), dims[1] - 1)
        cz = min(int((points[i, 2] - origin[2]) / h), dims[2] - 1)
        c = (cx * dims[1] + cy) * dims[2] + cz
        cell[i] = c
        starts[c + 1] += 1
    for c in range(1, starts.shape[0]):
        starts[c] += starts[c - 1]
    fill = starts[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    sorted_points = np.empty((3, n))  # coordinate-major: each cell's x, y, z are contiguous
    for i in range(n):  # in index order, so each cell lists its vertices by increasing index
        s = fill[cell[i]]
        order[s] = i
        sorted_points[0, s] = points[i, 0]
        sorted_points[1, s] = points[i, 1]
        sorted_points[2, s] = points[i, 2]
        fill[cell[i]] += 1
    return h, origin, dims, starts, order, sorted_points


@njit(cache=True, inline="always")
def _visit(qx, qy, qz, s0, s1, order, spoints, bd, bi, k):
    """Offer the sorted vertices ``s0:s1`` (whole cells) to the k-best lists of a query at ``(qx, qy, qz)``."""
    if k == 1:  # the common case, without the insertion sort
        best, bv = bd[0], bi[0]
        for s in range(s0, s1):
            dx = spoints[0, s] - qx
            dy = spoints[1, s] - qy
            dz = spoints[2, s] - qz
            d2 = dx * dx + dy * dy + dz * dz
            if d2 <= best:
                v = order[s]
                if d2 < best or v < bv:
                    best, bv = d2, v
        bd[0], bi[0] = best, bv
        return
    for s in range(s0, s1):
        dx = spoints[0, s] - qx
        dy = spoints[1, s] - qy
        dz = spoints[2, s] - qz
        d2 = dx * dx + dy * dy + dz * dz
        if d2 > bd[k - 1]:
            continue
        v = order[s]
        if d2 < bd[k - 1] or v < bi[k - 1]:
            j = k - 1
            while j > 0 and (bd[j - 1] > d2 or (bd[j - 1] == d2 and bi[j - 1] > v)):
                bd[j] = bd[j - 1]
                bi[j] = bi[j - 1]
                j -= 1
            bd[j] = d2
            bi[j] = v


@njit(cache=True, inline="always")
def _gap(q, o, c, cq, h):
    """Distance (mm) along one axis from coordinate ``q`` (in cell ``cq``) to cell ``c``; 0 for its own cell."""
    if c < cq:
        return q - (o + (c + 1) * h)
    if c > cq:
        return o + c * h - q
    return 0.0


@njit(cache=True)
def _knn_one(qx, qy, qz, k, spoints, origin, dims, starts, order, h, max_ring, bd, bi):
    """k nearest of one query into ``bd`` (squared mm) / ``bi``; False when more than ``max_ring`` rings needed.
    Rings of cells of growing Chebyshev radius; within a ring, rows of cells farther than the current k-th best
    are skipped and each row's z range is clipped to that distance (cells of a row are contiguous in memory).
    """
    fx = (qx - origin[0]) / h
    fy = (qy - origin[1]) / h
    fz = (qz - origin[2]) / h
    cx, cy, cz = int(np.floor(fx)), int(np.floor(fy)), int(np.floor(fz))
    r0 = max(0, -cx, cx - dims[0] + 1, -cy, cy - dims[1] + 1, -cz, cz - dims[2] + 1)  # rings before miss the grid
    # distance from the query to its own cell's faces (mm): unvisited cells after ring r are >= r*h + gap away
    gap = h * min(fx - cx, cx + 1 - fx, fy - cy, cy + 1 - fy, fz - cz, cz + 1 - fz)
    for r in range(r0, r0 + max_ring + 1):
        for x in range(max(cx - r, 0), min(cx + r, dims[0] - 1) + 1):
            gx = _gap(qx, origin[0], x, cx, h)
            gx2 = gx * gx
            if gx2 > bd[k - 1]:
                continue
            ex = abs(x - cx) == r
            for y in range(max(cy - r, 0), min(cy + r, dims[1] - 1) + 1):
                gy = _gap(qy, origin[1], y, cy, h)
                rem2 = bd[k - 1] - gx2 - gy * gy
                if rem2 < 0.0:
                    continue
                base = (x * dims[1] + y) * dims[2]
                z_lo, z_hi = max(cz - r, 0), min(cz + r, dims[2] - 1)
                if rem2 < np.inf:  # clip the row to the cells within the current k-th best distance
                    rem = np.sqrt(rem2) * (1.0 + 1e-12) + 1e-12
                    z_lo = max(z_lo, int(np.floor((qz - rem - origin[2]) / h)))
                    z_hi = min(z_hi, int(np.floor((qz + rem - origin[2]) / h)))
                if ex or abs(y - cy) == r:
                    if z_lo <= z_hi:
                        _visit(qx, qy, qz, starts[base + z_lo], starts[base + z_hi + 1], order, spoints, bd, bi, k)
                else:  # the cube's interior was visited in earlier rings: only the two z faces
                    if z_lo == cz - r:
                        _visit(qx, qy, qz, starts[base + z_lo], starts[base + z_lo + 1], order, spoints, bd, bi, k)
                    if r > 0 and z_hi == cz + r:
                        _visit(qx, qy, qz, starts[base + z_hi], starts[base + z_hi + 1], order, spoints, bd, bi, k)
        bound = r * h + gap
        if bd[k - 1] <= bound * bound:
            return True
    return False


@njit(cache=True, parallel=True)
def knn(q, k, spoints, origin, dims, starts, order, h, max_ring):
    """Squared distances and indices ``(n, k)`` of the k nearest grid points to each query; -1 where unresolved."""
    n = q.shape[0]
    out_d = np.full((n, k), np.inf)
    out_i = np.full((n, k), -1, dtype=np.int64)
    block = 2048
    for b in prange((n + block - 1) // block):
        bd = np.empty(k)
        bi = np.empty(k, dtype=np.int64)
        for i in range(b * block, min(n, (b + 1) * block)):
            for j in range(k):
                bd[j] = np.inf
                bi[j] = np.iinfo(np.int64).max
            if _knn_one(q[i, 0], q[i, 1], q[i, 2], k, spoints, origin, dims, starts, order, h, max_ring, bd, bi):
                for j in range(k):
                    out_d[i, j] = bd[j]
                    out_i[i, j] = bi[j]
    return out_d, out_i


class VertexGrid:
    """Uniform grid over a point set for exact k-nearest-neighbour queries (mm).

    Args:
        points: ``(n, 3)`` vertex positions (mm).
        faces: optional triangles, used only to size the cells (three mean edge lengths).
    """

    def __init__(self, points: np.ndarray, faces: np.ndarray | None = None, max_ring: int = 4) -> None:
        self.points = np.ascontiguousarray(points, dtype=np.float64)
        self.max_ring = int(max_ring)
        self.h, self.origin, self.dims, self.starts, self.order, self.sorted = build(
            self.points, cell_size(self.points, faces), MAX_CELLS)

    def query(self, q: np.ndarray, k: int = 1, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``(squared distances mm², indices)``, each ``(n, k)``; index -1 marks queries to answer elsewhere."""
        numba.set_num_threads(max(1, min(workers, numba.config.NUMBA_NUM_THREADS)))
        return knn(np.ascontiguousarray(q, dtype=np.float64), int(k), self.sorted, self.origin, self.dims,
                   self.starts, self.order, self.h, self.max_ring)
