"""Compiled kernel of the exact signed distance (numba, a base dependency; where it cannot load,
:mod:`organsegbench.surfaces.distance` falls back to vectorised numpy).

Same algorithm as the numpy path (:mod:`organsegbench.surfaces._exact_numpy`): for each query point, every triangle
incident to its ``k`` nearest vertices is tested with Ericson's closest-point routine, then the mesh walk described
in :mod:`organsegbench.surfaces.distance`; the sign comes from the pseudo-normal of the closest feature.
"""

from __future__ import annotations

import os

import numpy as np

try:  # numba caches compiled code; keep it out of the (possibly read-only) package folder
    from organsegbench.config import cache_dir

    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba"))
except Exception:  # noqa: BLE001 - caching is an optimisation only
    pass

import numba  # noqa: E402  (raises ImportError when absent: the caller falls back to numpy)
from numba import njit, prange  # noqa: E402


@njit(cache=True, inline="always")
def _closest(px, py, pz, ax, ay, az, bx, by, bz, cx, cy, cz):
    """Closest point on triangle abc to p: (x, y, z, region) with region 0 face, 1/2/3 vertex a/b/c,
    4/5/6 edge ab/ac/bc (Ericson, Real-Time Collision Detection, 5.1.5)."""
    abx, aby, abz = bx - ax, by - ay, bz - az
    acx, acy, acz = cx - ax, cy - ay, cz - az
    apx, apy, apz = px - ax, py - ay, pz - az
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    if d1 <= 0.0 and d2 <= 0.0:
        return ax, ay, az, 1
    bpx, bpy, bpz = px - bx, py - by, pz - bz
    d3 = abx * bpx + aby * bpy + abz * bpz
    d4 = acx * bpx + acy * bpy + acz * bpz
    if d3 >= 0.0 and d4 <= d3:
        return bx, by, bz, 2
    vc = d1 * d4 - d3 * d2
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
        v = d1 / (d1 - d3)
        return ax + v * abx, ay + v * aby, az + v * abz, 4
    cpx, cpy, cpz = px - cx, py - cy, pz - cz
    d5 = abx * cpx + aby * cpy + abz * cpz
    d6 = acx * cpx + acy * cpy + acz * cpz
    if d6 >= 0.0 and d5 <= d6:
        return cx, cy, cz, 3
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
        w = d2 / (d2 - d6)
        return ax + w * acx, ay + w * acy, az + w * acz, 5
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
        w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        return bx + w * (cx - bx), by + w * (cy - by), bz + w * (cz - bz), 6
    denom = 1.0 / (va + vb + vc)
    v = vb * denom
    w = vc * denom
    return ax + abx * v + acx * w, ay + aby * v + acy * w, az + abz * v + acz * w, 0


@njit(cache=True, inline="always")
def _scan(px, py, pz, v, seen, nprev, vertex_faces, faces, points, best, bf, breg, bx, by, bz):
    """Test every triangle incident to vertex ``v``; keep the closest (first found wins ties).

    Triangles that also touch one of the ``nprev`` vertices scanned before (``seen``) were tested then: skipped."""
    for j in range(vertex_faces.shape[1]):
        f = vertex_faces[v, j]
        if f < 0:
            break
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        tested = False
        for s in range(nprev):
            u = seen[s]
            if u == a or u == b or u == c:
                tested = True
                break
        if tested:
            continue
        x, y, z, reg = _closest(px, py, pz, points[a, 0], points[a, 1], points[a, 2], points[b, 0],
                                points[b, 1], points[b, 2], points[c, 0], points[c, 1], points[c, 2])
        d2 = (px - x) ** 2 + (py - y) ** 2 + (pz - z) ** 2
        if d2 < best:
            best, bf, breg, bx, by, bz = d2, f, reg, x, y, z
    return best, bf, breg, bx, by, bz


@njit(cache=True, inline="always")
def _uncovered(faces, bf, breg, seen, ns):
    """The vertex whose triangles must still be tested for the closest feature to be a local minimum, or -1.

    A face-interior closest point is final; a vertex is final once its triangles were tested; an edge once the
    triangles of either end were (they include both faces of the edge)."""
    if breg == 0:
        return -1
    if breg <= 3:
        w = faces[bf, breg - 1]
        for s in range(ns):
            if seen[s] == w:
                return -1
        return w
    e0 = faces[bf, 0] if breg != 6 else faces[bf, 1]
    e1 = faces[bf, 1] if breg == 4 else faces[bf, 2]
    for s in range(ns):
        if seen[s] == e0 or seen[s] == e1:
            return -1
    return e0


@njit(cache=True, parallel=True)
def exact_signed_distance(q, nearest, vertex_faces, faces, points, face_normals, max_walk):
    """Signed distances of points ``q`` (n, 3) seeded by their ``nearest`` vertices (n, k), walking the mesh."""
    n = q.shape[0]
    out = np.empty(n)
    block = 1024
    for blk in prange((n + block - 1) // block):
        seen = np.empty(nearest.shape[1] + max_walk, dtype=np.int64)
        for i in range(blk * block, min(n, (blk + 1) * block)):
            px, py, pz = q[i, 0], q[i, 1], q[i, 2]
            best = np.inf
            bf = -1
            breg = 0
            bx = by = bz = 0.0
            ns = 0
            for kk in range(nearest.shape[1]):
                v = nearest[i, kk]
                best, bf, breg, bx, by, bz = _scan(px, py, pz, v, seen, ns, vertex_faces, faces, points,
                                                   best, bf, breg, bx, by, bz)
                seen[ns] = v
                ns += 1
            for _ in range(max_walk):  # walk until the closest feature's triangles have all been tested
                w = _uncovered(faces, bf, breg, seen, ns)
                if w < 0:
                    break
                best, bf, breg, bx, by, bz = _scan(px, py, pz, w, seen, ns, vertex_faces, faces, points,
                                                   best, bf, breg, bx, by, bz)
                seen[ns] = w
                ns += 1
            out[i] = _signed(px, py, pz, best, bf, breg, bx, by, bz, vertex_faces, faces, points, face_normals)
    return out


@njit(cache=True, inline="always")
def _signed(px, py, pz, best, bf, breg, bx, by, bz, vertex_faces, faces, points, face_normals):
    """Distance with the sign of the closest feature's pseudo-normal (negative inside); a vertex's pseudo-normal is
    computed when needed (cheaper than all of them up front)."""
    nx, ny, nz = face_normals[bf, 0], face_normals[bf, 1], face_normals[bf, 2]
    if 1 <= breg <= 3:
        nx, ny, nz = _vertex_normal(faces[bf, breg - 1], points, faces, vertex_faces, face_normals)
    elif breg >= 4:
        e0 = faces[bf, 0] if breg != 6 else faces[bf, 1]
        e1 = faces[bf, 1] if breg == 4 else faces[bf, 2]
        nx = ny = nz = 0.0
        for j in range(vertex_faces.shape[1]):  # faces sharing the edge: sum of their normals
            f = vertex_faces[e0, j]
            if f < 0:
                break
            if faces[f, 0] == e1 or faces[f, 1] == e1 or faces[f, 2] == e1:
                nx += face_normals[f, 0]
                ny += face_normals[f, 1]
                nz += face_normals[f, 2]
    side = (px - bx) * nx + (py - by) * ny + (pz - bz) * nz
    d = np.sqrt(best)
    return -d if side < 0.0 else d


@njit(cache=True, parallel=True)
def vertex_signed_distance(q, nearest, dist, vertex_faces, faces, points, face_normals):
    """``method="vertex"``: the nearest-vertex distance with the sign of that vertex's pseudo-normal (computed here,
    so no table of all vertex normals is needed)."""
    n = q.shape[0]
    out = np.empty(n)
    for i in prange(n):
        v = nearest[i]
        nx, ny, nz = _vertex_normal(v, points, faces, vertex_faces, face_normals)
        side = (q[i, 0] - points[v, 0]) * nx + (q[i, 1] - points[v, 1]) * ny + (q[i, 2] - points[v, 2]) * nz
        out[i] = -dist[i] if side < 0.0 else dist[i]
    return out


def run(q: np.ndarray, nearest: np.ndarray, vertex_faces: np.ndarray, faces: np.ndarray, points: np.ndarray,
        face_normals: np.ndarray, workers: int, max_walk: int) -> np.ndarray:
    """Call the kernel with ``workers`` threads (contiguous inputs)."""
    numba.set_num_threads(max(1, min(workers, numba.config.NUMBA_NUM_THREADS)))
    c = np.ascontiguousarray
    return exact_signed_distance(c(q, dtype=np.float64), c(nearest, dtype=np.int64), c(vertex_faces),
                                 c(faces, dtype=np.int64), c(points), c(face_normals), int(max_walk))


def run_vertex(q: np.ndarray, nearest: np.ndarray, dist: np.ndarray, vertex_faces: np.ndarray, faces: np.ndarray,
               points: np.ndarray, face_normals: np.ndarray, workers: int) -> np.ndarray:
    """Call :func:`vertex_signed_distance` with ``workers`` threads (contiguous inputs)."""
    numba.set_num_threads(max(1, min(workers, numba.config.NUMBA_NUM_THREADS)))
    c = np.ascontiguousarray
    return vertex_signed_distance(c(q, dtype=np.float64), c(nearest, dtype=np.int64), c(dist, dtype=np.float64),
                                  c(vertex_faces), c(faces, dtype=np.int64), c(points), c(face_normals))


@njit(cache=True, parallel=True)
def face_normals(points, faces):
    """Unit face normals ``(m, 3)`` (zero for degenerate triangles), as the numpy function."""
    m = faces.shape[0]
    fn = np.zeros((m, 3))
    for f in prange(m):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        e1x, e1y, e1z = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
        e2x, e2y, e2z = points[c, 0] - points[a, 0], points[c, 1] - points[a, 1], points[c, 2] - points[a, 2]
        nx = e1y * e2z - e1z * e2y
        ny = e1z * e2x - e1x * e2z
        nz = e1x * e2y - e1y * e2x
        norm = np.sqrt(nx * nx + ny * ny + nz * nz)
        if norm > 0:
            fn[f, 0], fn[f, 1], fn[f, 2] = nx / norm, ny / norm, nz / norm
    return fn


@njit(cache=True, inline="always")
def _vertex_normal(v0, points, faces, vertex_faces, fn):
    """Angle-weighted unit pseudo-normal of vertex ``v0`` from its triangles, in vertex-face-table order."""
    sx = sy = sz = 0.0
    for j in range(vertex_faces.shape[1]):
        f = vertex_faces[v0, j]
        if f < 0:
            break
        corner = 0 if faces[f, 0] == v0 else (1 if faces[f, 1] == v0 else 2)
        v1 = faces[f, (corner + 1) % 3]
        v2 = faces[f, (corner + 2) % 3]
        ux, uy, uz = points[v1, 0] - points[v0, 0], points[v1, 1] - points[v0, 1], points[v1, 2] - points[v0, 2]
        wx, wy, wz = points[v2, 0] - points[v0, 0], points[v2, 1] - points[v0, 1], points[v2, 2] - points[v0, 2]
        den = max(np.sqrt((ux * ux + uy * uy + uz * uz) * (wx * wx + wy * wy + wz * wz)), 1e-300)
        ang = np.arccos(min(1.0, max(-1.0, (ux * wx + uy * wy + uz * wz) / den)))
        sx += fn[f, 0] * ang
        sy += fn[f, 1] * ang
        sz += fn[f, 2] * ang
    norm = np.sqrt(sx * sx + sy * sy + sz * sz)
    if norm > 0:
        return sx / norm, sy / norm, sz / norm
    return 0.0, 0.0, 0.0


@njit(cache=True, parallel=True)
def vertex_normals(points, faces, vertex_faces, fn):
    """Angle-weighted unit vertex pseudo-normals ``(n, 3)`` (same values as the numpy function to rounding)."""
    vn = np.zeros((points.shape[0], 3))
    for v0 in prange(points.shape[0]):  # each vertex sums over its own triangles: no write conflicts
        vn[v0, 0], vn[v0, 1], vn[v0, 2] = _vertex_normal(v0, points, faces, vertex_faces, fn)
    return vn


@njit(cache=True, nogil=True)
def vertex_face_table(faces, n_points):
    """Faces incident to each vertex, ``(n_points, max valence)``, padded with -1, in increasing face order."""
    counts = np.zeros(n_points, dtype=np.int32)
    for f in range(faces.shape[0]):
        for c in range(3):
            counts[faces[f, c]] += 1
    width = max(1, counts.max()) if n_points else 1
    out = np.full((n_points, width), -1, dtype=np.int32)  # int32: half the memory traffic (faces < 2**31)
    fill = np.zeros(n_points, dtype=np.int64)
    for f in range(faces.shape[0]):
        for c in range(3):
            v = faces[f, c]
            out[v, fill[v]] = f
            fill[v] += 1
    return out
