"""Numpy engine of the exact signed distance: vectorised closest points on triangles and the mesh walk.

Same steps, in the same order, as the compiled kernel (:mod:`organsegbench.surfaces._kernels`), so both engines give
the same values; see :mod:`organsegbench.surfaces.distance` for the method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from organsegbench.surfaces.distance import SurfaceDistance


def face_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals of the triangles (zero for degenerate triangles)."""
    p0 = points[faces[:, 0]]
    n = np.cross(points[faces[:, 1]] - p0, points[faces[:, 2]] - p0)
    norm = np.sqrt(np.einsum("ij,ij->i", n, n))[:, None]
    return np.divide(n, norm, out=np.zeros_like(n), where=norm > 0)


def vertex_pseudo_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Angle-weighted vertex normals (unit length), the pseudo-normal that gives correct inside/outside signs."""
    fn = face_normals(points, faces)
    out = np.zeros_like(points)
    for i in range(3):
        p0 = points[faces[:, i]]
        e1 = points[faces[:, (i + 1) % 3]] - p0
        e2 = points[faces[:, (i + 2) % 3]] - p0
        cosang = np.einsum("ij,ij->i", e1, e2) / np.maximum(
            np.sqrt(np.einsum("ij,ij->i", e1, e1) * np.einsum("ij,ij->i", e2, e2)), 1e-300)
        ang = np.arccos(np.clip(cosang, -1.0, 1.0))
        for axis in range(3):
            out[:, axis] += np.bincount(faces[:, i], weights=fn[:, axis] * ang, minlength=len(points))
    norm = np.sqrt(np.einsum("ij,ij->i", out, out))[:, None]
    return np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)


def _closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Closest points on triangles ``(a, b, c)`` to ``p`` (arrays ``(..., 3)``), vectorised Ericson test.

    Returns ``(closest, region)`` where region is 0 = face interior, 1/2/3 = vertex a/b/c, 4/5/6 = edge ab/ac/bc.
    """
    def dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.einsum("...i,...i->...", u, v)

    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = dot(ab, ap), dot(ac, ap)
    bp = p - b
    d3, d4 = dot(ab, bp), dot(ac, bp)
    cp = p - c
    d5, d6 = dot(ab, cp), dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v = np.where(denom != 0, vb / denom, 0.0)
        w = np.where(denom != 0, vc / denom, 0.0)
        closest = a + ab * v[..., None] + ac * w[..., None]
        region = np.zeros(d1.shape, dtype=np.int8)
        # later assignments win, so go through Ericson's tests in reverse priority
        m = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
        t = np.clip((d4 - d3) / ((d4 - d3) + (d5 - d6)), 0.0, 1.0)
        closest = np.where(m[..., None], b + (c - b) * np.nan_to_num(t)[..., None], closest)
        region[m] = 6
        m = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        t = np.clip(d2 / (d2 - d6), 0.0, 1.0)
        closest = np.where(m[..., None], a + ac * np.nan_to_num(t)[..., None], closest)
        region[m] = 5
        m = (d6 >= 0) & (d5 <= d6)
        closest = np.where(m[..., None], c, closest)
        region[m] = 3
        m = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        t = np.clip(d1 / (d1 - d3), 0.0, 1.0)
        closest = np.where(m[..., None], a + ab * np.nan_to_num(t)[..., None], closest)
        region[m] = 4
        m = (d3 >= 0) & (d4 <= d3)
        closest = np.where(m[..., None], b, closest)
        region[m] = 2
        m = (d1 <= 0) & (d2 <= 0)
        closest = np.where(m[..., None], a, closest)
        region[m] = 1
    return closest, region


def _best_over(sd: SurfaceDistance, p: np.ndarray, verts: np.ndarray):
    """Closest point over every triangle incident to ``verts`` (n, j; -1 = none), in the kernel's order.

    Returns ``(d2, face, region, closest)``; the first of equal candidates wins, as in the kernel.
    """
    vf = sd.vertex_faces
    cand = np.where(verts[..., None] >= 0, vf[np.maximum(verts, 0)], -1).reshape(len(p), -1)
    valid = cand >= 0
    tri = sd.surface.faces[np.where(valid, cand, 0)]  # (n, c, 3)
    v = sd.surface.points
    closest, region = _closest_on_triangles(p[:, None, :], v[tri[..., 0]], v[tri[..., 1]], v[tri[..., 2]])
    diff = p[:, None, :] - closest
    d2 = np.where(valid, np.einsum("ijk,ijk->ij", diff, diff), np.inf)
    best = np.argmin(d2, axis=1)
    rows = np.arange(len(p))
    return d2[rows, best], cand[rows, best], region[rows, best], closest[rows, best]


def _uncovered(faces: np.ndarray, face: np.ndarray, region: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Per point, the vertex whose triangles must still be tested (-1 when the closest feature is final)."""
    f = faces[face]
    vert = np.select([region == 1, region == 2, region == 3], [f[:, 0], f[:, 1], f[:, 2]], -1)
    e0 = np.select([region == 4, region == 5, region == 6], [f[:, 0], f[:, 0], f[:, 1]], -1)
    e1 = np.select([region == 4, region == 5, region == 6], [f[:, 1], f[:, 2], f[:, 2]], -1)
    w = np.where(vert >= 0, vert, e0)
    done = (region == 0) | (seen == w[:, None]).any(axis=1) | ((e1 >= 0) & (seen == e1[:, None]).any(axis=1))
    return np.where(done, -1, w)


def exact_walk(sd: SurfaceDistance, p: np.ndarray, seeds: np.ndarray, max_walk: int = 32) -> np.ndarray:
    """Signed distances (mm) of points ``p`` (n, 3) seeded by vertex indices ``seeds`` (n, k)."""
    faces = sd.surface.faces
    d2, face, region, closest = _best_over(sd, p, seeds)
    seen = seeds
    for _ in range(max_walk):
        w = _uncovered(faces, face, region, seen)
        act = np.flatnonzero(w >= 0)
        if act.size == 0:
            break
        seen = np.concatenate([seen, w[:, None]], axis=1)
        d2w, fw, rw, cw = _best_over(sd, p[act], w[act, None])
        better = d2w < d2[act]
        upd = act[better]
        d2[upd], face[upd], region[upd], closest[upd] = d2w[better], fw[better], rw[better], cw[better]
    return _signed(sd, p, d2, face, region, closest)


def _signed(sd: SurfaceDistance, p: np.ndarray, d2: np.ndarray, face: np.ndarray, region: np.ndarray,
            closest: np.ndarray) -> np.ndarray:
    """Distance with the sign of the closest feature's pseudo-normal (negative inside)."""
    f = sd.surface.faces[face]
    normal = sd.face_normals[face].copy()
    vert = np.select([region == 1, region == 2, region == 3], [f[:, 0], f[:, 1], f[:, 2]], -1)
    is_v = vert >= 0
    normal[is_v] = sd.vertex_normals[vert[is_v]]
    e0 = np.select([region == 4, region == 5, region == 6], [f[:, 0], f[:, 0], f[:, 1]], -1)
    e1 = np.select([region == 4, region == 5, region == 6], [f[:, 1], f[:, 2], f[:, 2]], -1)
    is_e = e0 >= 0
    if is_e.any():  # edge pseudo-normal: sum of the normals of the (two) faces sharing the edge
        fa, fb = sd.vertex_faces[e0[is_e]], sd.vertex_faces[e1[is_e]]
        shared = (fa[:, :, None] == fb[:, None, :]).any(axis=2) & (fa >= 0)
        normal[is_e] = np.einsum("ij,ijk->ik", shared.astype(float), sd.face_normals[np.where(shared, fa, 0)])
    side = np.einsum("ij,ij->i", p - closest, normal)
    dist = np.sqrt(d2)
    return np.where(side < 0, -dist, dist)
