"""Cohort error distribution on a template surface.

Each subject's *reference* surface is aligned to the template (a chosen case, default the first) by principal-axes
initialisation followed by ICP (``vtkIterativeClosestPointTransform``, rigid or similarity); the subject's
per-vertex errors (the ``signed_distance_mm`` array of its reference surface, i.e. the prediction's error located on
the reference) are carried onto the template vertices by nearest neighbour (scipy ``cKDTree``); per template vertex
the mean, median, 5th and 95th percentiles of the signed and absolute errors are computed.

Deterministic: the only randomness (the vertex subsample that scores the principal-axes candidates) is drawn from
``numpy.random.default_rng(seed)``; VTK's ICP picks landmarks by a fixed stride.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from organsegbench.errors import ConfigError, unknown_name
from organsegbench.provenance import provenance
from organsegbench.surfaces.errormap import SIGNED
from organsegbench.surfaces.mesh import Surface

STATS = ("mean", "median", "p5", "p95")


@dataclass
class Alignment:
    """A 4x4 homogeneous matrix mapping subject points (mm) onto the template, and how well it fits."""

    matrix: np.ndarray
    mode: str
    initial_matrix: np.ndarray
    mean_distance_mm: float
    iterations: int


@dataclass
class CohortCase:
    """One subject: its reference surface carrying per-vertex signed errors (``signed_distance_mm``)."""

    case: str
    reference: Surface


@dataclass
class CohortErrorMap:
    """The template surface with per-vertex statistics over subjects and each subject's alignment."""

    template: Surface
    template_case: str
    alignments: dict[str, Alignment]
    metadata: dict[str, Any] = field(default_factory=dict)


def _principal_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centre = points.mean(axis=0)
    evals, evecs = np.linalg.eigh(np.cov((points - centre).T))
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    if np.linalg.det(evecs) < 0:
        evecs[:, 2] *= -1
    return centre, np.maximum(evals, 0.0), evecs


def principal_axes_transform(moving: np.ndarray, fixed: np.ndarray, mode: str = "rigid", seed: int = 0,
                             n_check: int = 2000) -> np.ndarray:
    """4x4 matrix that maps ``moving`` points onto ``fixed`` by matching centroids and principal axes.

    The four proper rotations allowed by the axes' sign ambiguity are scored by the mean nearest-neighbour distance
    of a seeded vertex subsample; the best is returned. ``mode="similarity"`` also matches the overall size.
    """
    cm, em, vm = _principal_axes(moving)
    cf, ef, vf = _principal_axes(fixed)
    scale = float(np.sqrt(ef.sum() / em.sum())) if mode == "similarity" and em.sum() > 0 else 1.0
    rng = np.random.default_rng(seed)
    sub = moving[rng.choice(len(moving), size=min(n_check, len(moving)), replace=False)]
    tree = cKDTree(fixed)
    best, best_cost = np.eye(4), np.inf
    for signs in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
        rot = vf @ np.diag(signs) @ vm.T
        m = np.eye(4)
        m[:3, :3] = scale * rot
        m[:3, 3] = cf - scale * rot @ cm
        cost = float(tree.query(sub @ m[:3, :3].T + m[:3, 3])[0].mean())
        if cost < best_cost - 1e-9:
            best, best_cost = m, cost
    return best


def icp(moving: Surface, fixed: Surface, mode: str = "rigid", initial: np.ndarray | None = None,
        max_iterations: int = 200, max_landmarks: int = 5000, tolerance_mm: float = 1e-4) -> Alignment:
    """Align ``moving`` to ``fixed`` with VTK's ICP (rigid body or similarity), starting from ``initial``.

    Returns the full matrix (ICP result composed with the initial transform) and the mean closest-point distance
    (mm) of all moving vertices after alignment.
    """
    from vtkmodules.vtkCommonDataModel import vtkIterativeClosestPointTransform, vtkPolyData

    if mode not in ("rigid", "similarity"):
        raise unknown_name("alignment mode", mode, ["rigid", "similarity"])
    init = np.eye(4) if initial is None else np.asarray(initial, dtype=float)
    start = moving.transformed(init)

    def cloud(s: Surface) -> vtkPolyData:
        pd = Surface(s.points, s.faces, s.coordinate_system).to_polydata()
        return pd

    reg = vtkIterativeClosestPointTransform()
    reg.SetSource(cloud(start))
    reg.SetTarget(cloud(fixed))
    lt = reg.GetLandmarkTransform()
    lt.SetModeToRigidBody() if mode == "rigid" else lt.SetModeToSimilarity()
    reg.SetMaximumNumberOfIterations(int(max_iterations))
    reg.SetMaximumNumberOfLandmarks(int(max_landmarks))
    reg.CheckMeanDistanceOn()
    reg.SetMaximumMeanDistance(float(tolerance_mm))
    reg.StartByMatchingCentroidsOff()
    reg.Modified()
    reg.Update()
    vm = reg.GetMatrix()
    m = np.array([[vm.GetElement(i, j) for j in range(4)] for i in range(4)])
    full = m @ init
    moved = moving.points @ full[:3, :3].T + full[:3, 3]
    mean_d = float(cKDTree(fixed.points).query(moved, workers=-1)[0].mean())
    return Alignment(full, mode, init, mean_d, int(reg.GetNumberOfIterations()))


def align(moving: Surface, fixed: Surface, mode: str = "rigid", seed: int = 0) -> Alignment:
    """Principal-axes initialisation followed by ICP (see :func:`principal_axes_transform`, :func:`icp`)."""
    init = principal_axes_transform(moving.points, fixed.points, mode=mode, seed=seed)
    return icp(moving, fixed, mode=mode, initial=init)


def transfer_to_template(template_points: np.ndarray, subject_points_aligned: np.ndarray,
                         values: np.ndarray) -> np.ndarray:
    """Per-template-vertex value of the nearest aligned subject vertex."""
    _, idx = cKDTree(subject_points_aligned).query(template_points, workers=-1)
    return np.asarray(values)[idx]


def cohort_error_map(cases: list[CohortCase], template: str | None = None, mode: str = "rigid",
                     seed: int = 0, array: str = SIGNED) -> CohortErrorMap:
    """Aggregate per-vertex errors of several subjects on a template surface.

    Args:
        cases: subjects (at least two), each with a reference surface carrying ``array``.
        template: case name of the template (default: the first case).
        mode: ``"rigid"`` or ``"similarity"`` ICP.
        seed: seed of the principal-axes scoring subsample.

    Returns:
        The template surface with arrays ``{mean,median,p5,p95}_signed_mm`` and ``{mean,median,p5,p95}_abs_mm``
        (mm) and ``n_cases``, plus each case's alignment.

    Raises:
        ConfigError: fewer than two cases, duplicate case names, or a case without ``array``.
        UnknownNameError: ``template`` is not one of the case names.
    """
    names = [c.case for c in cases]
    if len(cases) < 2:
        raise ConfigError(
            f"a cohort error distribution needs at least 2 subjects; got {len(cases)} ({', '.join(names) or 'none'})",
            hint="add cases to the cohort file, or use `organsegbench errormap` for a single case",
        )
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"duplicate case names in the cohort: {', '.join(dup)}", hint="give each case a unique id")
    missing = [c.case for c in cases if array not in c.reference.point_data]
    if missing:
        raise ConfigError(f"cases without the per-vertex array {array!r}: {', '.join(missing)}",
                          hint="compute each case's error map first (surface_errors / errormap_from_labelmaps)")
    tname = template or names[0]
    if tname not in names:
        raise unknown_name("template case", tname, names)
    tmpl = next(c for c in cases if c.case == tname).reference
    signed = np.empty((len(cases), tmpl.n_points))
    alignments = {}
    for i, c in enumerate(cases):
        if c.case == tname:
            al = Alignment(np.eye(4), mode, np.eye(4), 0.0, 0)
        else:
            al = align(c.reference, tmpl, mode=mode, seed=seed)
        alignments[c.case] = al
        moved = c.reference.points @ al.matrix[:3, :3].T + al.matrix[:3, 3]
        signed[i] = transfer_to_template(tmpl.points, moved, c.reference.point_data[array])
    out = Surface(tmpl.points, tmpl.faces, tmpl.coordinate_system, {}, dict(tmpl.metadata))
    for kind, vals in (("signed", signed), ("abs", np.abs(signed))):
        out.point_data[f"mean_{kind}_mm"] = vals.mean(axis=0)
        out.point_data[f"median_{kind}_mm"] = np.median(vals, axis=0)
        out.point_data[f"p5_{kind}_mm"] = np.percentile(vals, 5, axis=0)
        out.point_data[f"p95_{kind}_mm"] = np.percentile(vals, 95, axis=0)
    out.point_data["n_cases"] = np.full(tmpl.n_points, float(len(cases)))
    meta = {"template_case": tname, "mode": mode, "seed": seed, "cases": names,
            "transfer": "nearest template-vertex neighbour (cKDTree) after alignment",
            "alignment": "principal axes + vtkIterativeClosestPointTransform",
            "provenance": provenance(step="cohort surface error map", mode=mode, seed=seed, template=tname)}
    return CohortErrorMap(out, tname, alignments, meta)
