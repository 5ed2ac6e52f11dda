"""Surface extraction and exact surface-to-surface distances, restricted to each mask's bounding box.

Two surfaces are used, because the two reference implementations define them differently:

* **voxel surface** (medpy; used for HD, HD95, ASSD and the directed ASDs): the foreground voxels that one
  binary erosion with the 6-neighbourhood (``generate_binary_structure(ndim, 1)``, border value 0) removes,
  i.e. ``mask XOR erode(mask)``. Voxels on the volume border therefore belong to the surface.
* **surfels** (surface-distance package, Nikolov et al. 2021; used for NSD): the corners of the voxel grid whose
  2x2x2 (2x2 in 2D) neighbourhood is neither all background nor all foreground; each carries the area in mm²
  (length in mm in 2D) of the marching-cubes surface inside that neighbourhood, from the package's lookup table.

Distances are not read from a dense distance transform of the bounding box (float64, slow, and huge when a far
false-positive island stretches the box) but found point by point, exactly: near points by probing integer voxel
offsets in order of length in a dense boolean copy of the other surface (the first hit is the nearest point), the
rest with a k-d tree over the other surface's points (:class:`scipy.spatial.cKDTree`, no approximation). The
returned distance is computed from the integer index difference exactly as
:func:`scipy.ndimage.distance_transform_edt` computes it (``sqrt(sum(((i_near - i) * spacing)**2))``), so values
equal medpy's and surface-distance's to rounding.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from organsegbench.errors import DependencyError
from organsegbench.metrics.crops import split_crop


@dataclass(frozen=True)
class Points:
    """Surface points of one mask in the full-volume index frame.

    Attributes:
        idx: ``(n, ndim)`` int64 indices, raster (C) order.
        lin: ``(n,)`` int64 linear indices in the frame of shape ``frame`` (sorted ascending).
        frame: shape used for ``lin`` (the volume shape, or volume shape + 1 for surfel corners).
        area: ``(n,)`` surfel areas in mm² (mm in 2D) for surfels; ``None`` for voxel surfaces.
        pieces: the points as boolean arrays with the global index of their ``[0, 0, 0]`` (one per piece of
            :func:`.crops.split_crop`), for the offset probe.
    """

    idx: np.ndarray
    lin: np.ndarray
    frame: tuple[int, ...]
    area: np.ndarray | None = None
    pieces: tuple[tuple[np.ndarray, tuple[int, ...]], ...] = ()

    def __len__(self) -> int:
        return len(self.lin)


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Tight bounding box of a boolean mask as slices, or ``None`` when empty (projections, no labelling)."""
    axes = range(mask.ndim)
    first = np.flatnonzero(mask.any(axis=tuple(a for a in axes if a != 0)))
    if first.size == 0:
        return None
    sub = mask[first[0]:first[-1] + 1]
    proj = sub.any(axis=0)
    out = [slice(int(first[0]), int(first[-1]) + 1)]
    for ax in range(proj.ndim):
        nz = np.flatnonzero(proj.any(axis=tuple(a for a in range(proj.ndim) if a != ax)))
        out.append(slice(int(nz[0]), int(nz[-1]) + 1))
    return tuple(out)


def _points(local: np.ndarray, offset: tuple[int, ...], frame: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Global indices and linear indices of the True voxels of ``local`` placed at ``offset`` in ``frame``."""
    flat = np.flatnonzero(local)  # much faster than np.nonzero on large crops
    idx = np.empty((flat.size, local.ndim), dtype=np.int64)
    for ax, c in enumerate(np.unravel_index(flat, local.shape)):
        np.add(c, offset[ax], out=idx[:, ax])
    lin = np.ravel_multi_index(tuple(idx.T), frame)
    return idx, lin


def _merge(parts: list[Points]) -> Points:
    """One :class:`Points` from the points of disjoint pieces (linear indices sorted again)."""
    if len(parts) == 1:
        return parts[0]
    lin = np.concatenate([p.lin for p in parts])
    order = np.argsort(lin, kind="stable")
    area = None if parts[0].area is None else np.concatenate([p.area for p in parts])[order]
    return Points(np.concatenate([p.idx for p in parts])[order], lin[order], parts[0].frame, area,
                  tuple(pc for p in parts for pc in p.pieces))


def voxel_surface(crop: np.ndarray, offset: tuple[int, ...], shape: tuple[int, ...]) -> Points:
    """medpy's surface of a boolean mask given as its bounding-box ``crop`` at ``offset`` in a volume of ``shape``.

    ``crop`` must contain every foreground voxel of the mask (its bounding box or larger): the erosion is done on
    the crop padded with background, which is identical to eroding the whole volume with border value 0. Far
    apart groups of foreground are processed in separate pieces (:func:`.crops.split_crop`).
    """
    return _merge([_voxel_surface(c, o, shape) for c, o in split_crop(crop, offset)])


def _voxel_surface(crop: np.ndarray, offset: tuple[int, ...], shape: tuple[int, ...]) -> Points:
    padded = np.pad(crop, 1)
    core = [slice(1, n + 1) for n in crop.shape]
    interior = crop.copy()
    for ax in range(crop.ndim):
        for start in (0, 2):
            sl = list(core)
            sl[ax] = slice(start, start + crop.shape[ax])
            np.logical_and(interior, padded[tuple(sl)], out=interior)
    np.logical_xor(crop, interior, out=interior)  # interior is a subset of crop: xor = crop minus interior
    idx, lin = _points(interior, offset, shape)
    return Points(idx, lin, tuple(shape), None, ((interior, tuple(offset)),))


@functools.lru_cache(maxsize=64)
def _surfel_table(spacing: tuple[float, ...]) -> np.ndarray:
    """Neighbourhood code -> surfel area (mm²; contour length in mm in 2D), from the surface-distance package."""
    try:
        from surface_distance import lookup_tables
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyError(
            "NSD needs the surfel-area lookup table of the 'surface-distance' package, which is not installed",
            "pip install surface-distance==0.1",
        ) from exc
    if len(spacing) == 3:
        return np.asarray(lookup_tables.create_table_neighbour_code_to_surface_area(spacing), dtype=np.float64)
    return np.asarray(lookup_tables.create_table_neighbour_code_to_contour_length(spacing), dtype=np.float64)


def surfels(crop: np.ndarray, offset: tuple[int, ...], shape: tuple[int, ...], spacing: np.ndarray) -> Points:
    """Surfels (grid corners on the surface, with areas) of the mask whose bounding-box ``crop`` is at ``offset``.

    Corner ``p`` (global index, ``0 <= p <= shape``) is the centre of the 2^ndim voxels ``p-1 .. p`` along every
    axis; its neighbourhood code weights voxel ``p-1+k`` (``k`` in {0,1}^ndim) with ``2**(2**ndim - 1 - bits(k))``,
    the surface-distance package's encoding (``ENCODE_NEIGHBOURHOOD_3D_KERNEL``). Voxels outside the volume are
    background, as in that package.
    """
    return _merge([_surfels(c, o, shape, spacing) for c, o in split_crop(crop, offset)])


def _surfels(crop: np.ndarray, offset: tuple[int, ...], shape: tuple[int, ...], spacing: np.ndarray) -> Points:
    nd = crop.ndim
    code = np.pad(crop, 1).view(np.uint8)
    # separable encoding: along each axis (last first) combine the two neighbours as (low-index << w) | high-index,
    # so the voxel at offset k in {0,1}^nd ends with weight 2**(2**nd - 1 - bits(k)) (bits: k read as binary)
    for i, ax in enumerate(reversed(range(nd))):
        lo = [slice(None)] * nd
        hi = [slice(None)] * nd
        lo[ax] = slice(0, -1)
        hi[ax] = slice(1, None)
        code = np.left_shift(code[tuple(lo)], 2**i) | code[tuple(hi)]
    n_bits = 2**nd
    full = (1 << n_bits) - 1
    border = (code != 0) & (code != full)
    frame = tuple(n + 1 for n in shape)
    idx, lin = _points(border, offset, frame)
    area = _surfel_table(tuple(float(s) for s in spacing))[code[border]]
    return Points(idx, lin, frame, area, ((border, tuple(offset)),))


def _edt_length(offsets: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Length in mm of integer index offsets, with the arithmetic of ``distance_transform_edt``."""
    delta = offsets.astype(np.float64) * spacing
    delta *= delta
    d2 = delta[:, 0].copy()
    for ax in range(1, delta.shape[1]):
        d2 += delta[:, ax]
    return np.sqrt(d2)


def _ball_offsets(radius_mm: float, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer offsets no longer than ``radius_mm`` (sorted by length) and the per-axis reach in voxels."""
    reach = np.floor(radius_mm / spacing + 1e-9).astype(np.int64)
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    off = np.stack([g.ravel() for g in grids], axis=1)
    length = _edt_length(off, spacing)
    keep = length <= radius_mm
    order = np.argsort(length[keep], kind="stable")
    return off[keep][order], reach


#: above this many offsets in the tolerance ball, NSD asks the k-d tree instead of probing offsets
MAX_PROBE_OFFSETS = 400


#: the exact-distance probe covers a ball holding about this many offsets before the k-d tree takes over
PROBE_OFFSETS = 120


def default_probe_mm(spacing: np.ndarray) -> float:
    """Radius (mm) of the ball holding about :data:`PROBE_OFFSETS` voxel offsets for this spacing."""
    return float(np.cbrt(PROBE_OFFSETS * float(np.prod(spacing)) * 3 / (4 * np.pi)))


def _coincident(src_lin: np.ndarray, dst_lin: np.ndarray) -> np.ndarray:
    """Boolean mask over ``src_lin`` of the entries also in the sorted ``dst_lin``."""
    if dst_lin.size == 0:
        return np.zeros(src_lin.size, dtype=bool)
    pos = np.searchsorted(dst_lin, src_lin)
    np.minimum(pos, dst_lin.size - 1, out=pos)
    return dst_lin[pos] == src_lin


class Target:
    """The points of one surface, ready for nearest-neighbour queries.

    Near points are resolved by probing voxel offsets in order of length in a dense copy of the surface (exact:
    the first hit is the nearest point); the rest go to a k-d tree built lazily, once. ``probe_mm=0`` disables the
    probe (then points on both surfaces are still matched first).
    """

    def __init__(self, points: Points, spacing: np.ndarray, workers: int = 1, probe_mm: float | None = None
                 ) -> None:
        self.probe_mm = default_probe_mm(spacing) if probe_mm is None else probe_mm
        self.points = points
        self.spacing = spacing
        self.workers = workers
        self._tree: cKDTree | None = None

    @property
    def tree(self) -> cKDTree:
        """k-d tree over the points in mm."""
        if self._tree is None:
            # leafsize 64: ~20 % faster queries than the default 16 on organ surfaces (benchmarks/metrics.py case)
            self._tree = cKDTree(self.points.idx * self.spacing, leafsize=64, balanced_tree=False,
                                 compact_nodes=False)
        return self._tree

    def _probe(self, src: Points, radius_mm: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Nearest-offset probing in a dense copy of this surface, nearest offsets first.

        Returns ``(resolved, distance)`` over ``src``: for resolved points the exact distance (mm) to the nearest
        point of this surface, which is within ``radius_mm``; unresolved points have none within ``radius_mm``.
        ``None`` when there is no dense copy or the ball holds too many offsets.
        """
        pts = self.points
        off, reach = _ball_offsets(radius_mm, self.spacing)
        if not pts.pieces or len(off) > MAX_PROBE_OFFSETS:
            return None
        lengths = _edt_length(off, self.spacing)
        resolved = np.zeros(len(src), dtype=bool)
        dist = np.full(len(src), np.inf)
        for piece, origin in pts.pieces:  # the first hit in a piece is its nearest point; keep the nearest piece
            dense = np.pad(piece, [(2 * r, 2 * r) for r in reach])
            local = src.idx - (np.asarray(origin) - 2 * reach)
            # points farther than `reach` voxels (along an axis) from the piece cannot be within the radius
            ok = np.all((local >= reach) & (local < np.asarray(dense.shape) - reach), axis=1)
            cand = np.flatnonzero(ok)
            lin = np.ravel_multi_index(tuple(local[cand].T), dense.shape)
            flat = dense.ravel()
            steps = off @ np.asarray([int(np.prod(dense.shape[ax + 1:])) for ax in range(dense.ndim)])
            for step, length in zip(steps, lengths, strict=True):
                if cand.size == 0:
                    break
                hit = flat[lin + step]
                if hit.any():
                    found = cand[hit]
                    resolved[found] = True
                    dist[found] = np.minimum(dist[found], length)
                    miss = ~hit
                    cand, lin = cand[miss], lin[miss]
        return resolved, dist

    def within(self, src: Points, tolerance_mm: float) -> np.ndarray:
        """Boolean array over ``src``: is a point of this surface within ``tolerance_mm`` (distance <= tol)?"""
        probed = self._probe(src, tolerance_mm)
        if probed is None:
            return self.distances_from(src, upper_mm=tolerance_mm) <= tolerance_mm
        return probed[0]

    def distances_from(self, src: Points, upper_mm: float | None = None) -> np.ndarray:
        """Distance in mm from every point of ``src`` to the nearest point of this surface.

        Args:
            src: the query surface (same frame).
            upper_mm: when given, distances above it may be returned as ``inf`` (enough for NSD, much faster).

        Returns:
            float64 array aligned with ``src.idx``: exact EDT-equal distances (0 where the point is on both).
        """
        probed = self._probe(src, self.probe_mm) if upper_mm is None and self.probe_mm else None
        if probed is not None:
            out = probed[1]
            rest = np.flatnonzero(~probed[0])
        else:
            out = np.zeros(len(src), dtype=np.float64)
            rest = np.flatnonzero(~_coincident(src.lin, self.points.lin))
        if rest.size == 0:
            return out
        q = src.idx[rest]
        bound = np.inf if upper_mm is None else upper_mm * (1 + 1e-9) + 1e-9
        _, nn = self.tree.query(q * self.spacing, k=1, distance_upper_bound=bound, workers=self.workers)
        found = nn < len(self.points)
        if not found.all():
            out[rest[~found]] = np.inf
            rest, q, nn = rest[found], q[found], nn[found]
        out[rest] = _edt_length(self.points.idx[nn] - q, self.spacing)
        return out
