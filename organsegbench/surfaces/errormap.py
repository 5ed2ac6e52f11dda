"""Surface error map of a prediction against a reference: per-vertex signed distances, summary, histograms.

Sign convention (see :mod:`organsegbench.surfaces.distance`): negative = the prediction boundary lies inside the
reference (under-segmentation), positive = outside (over-segmentation). Arrays are named
``signed_distance_mm`` and ``abs_distance_mm`` on both surfaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from organsegbench.io.image import Image
from organsegbench.provenance import provenance
from organsegbench.surfaces.distance import DEFAULT_K, both_ways
from organsegbench.surfaces.mesh import Surface, require_same_space, surface_from_labelmap, walls_only

SIGNED = "signed_distance_mm"
ABSOLUTE = "abs_distance_mm"


@dataclass
class ErrorMap:
    """Both surfaces with per-vertex errors, summary statistics and provenance.

    Attributes:
        reference: reference surface; ``point_data`` holds the error of the prediction at each reference vertex.
        prediction: prediction surface; ``point_data`` holds its signed distance to the reference.
        summary: statistics in mm (see :func:`summarise`) for ``"pred_to_ref"``, ``"ref_to_pred"`` and
            ``"symmetric"`` (both sets of vertices pooled).
        metadata: structure, case, method, provenance.
    """

    reference: Surface
    prediction: Surface
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def pred_to_ref(self) -> np.ndarray:
        """Signed error (mm) at each prediction vertex."""
        return self.prediction.point_data[SIGNED]

    @property
    def ref_to_pred(self) -> np.ndarray:
        """Signed error (mm) at each reference vertex."""
        return self.reference.point_data[SIGNED]

    def histograms(self, bin_width_mm: float = 0.5) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{direction: (counts, bin_edges_mm)}`` of the signed errors on a shared, symmetric bin grid."""
        lim = max(float(np.abs(self.pred_to_ref).max()), float(np.abs(self.ref_to_pred).max()), bin_width_mm)
        n = int(np.ceil(lim / bin_width_mm))
        edges = np.arange(-n, n + 1) * bin_width_mm
        return {"pred_to_ref": (np.histogram(self.pred_to_ref, edges)[0], edges),
                "ref_to_pred": (np.histogram(self.ref_to_pred, edges)[0], edges)}


def summarise(signed: np.ndarray, tolerance_mm: float = 2.0) -> dict[str, float]:
    """Summary of signed errors in mm: n, mean, std, median, p5, p95 of the signed values; mean, median, p95, max
    and RMS of the absolute values; fraction of vertices within ``tolerance_mm`` and fractions inside/outside."""
    s = np.asarray(signed, dtype=float)
    a = np.abs(s)
    return {
        "n_vertices": int(s.size),
        "mean_mm": float(s.mean()), "std_mm": float(s.std()), "median_mm": float(np.median(s)),
        "p5_mm": float(np.percentile(s, 5)), "p95_mm": float(np.percentile(s, 95)),
        "mean_abs_mm": float(a.mean()), "median_abs_mm": float(np.median(a)),
        "p95_abs_mm": float(np.percentile(a, 95)), "max_abs_mm": float(a.max()),
        "rms_mm": float(np.sqrt(np.mean(s**2))),
        f"fraction_within_{tolerance_mm:g}mm": float(np.mean(a <= tolerance_mm)),
        "fraction_inside": float(np.mean(s < 0)), "fraction_outside": float(np.mean(s > 0)),
    }


def surface_errors(reference: Surface, prediction: Surface, method: str = "exact", k: int = DEFAULT_K,
                   workers: int | None = None, tolerance_mm: float = 2.0) -> ErrorMap:
    """Signed errors in both directions between two surfaces in the same physical space.

    Raises:
        GeometryMismatchError: the surfaces are in different coordinate systems or non-overlapping grids.
    """
    require_same_space(reference, prediction)
    ref, pred = reference.copy(), prediction.copy()
    p2r, r2p, engines = both_ways(ref, pred, method=method, k=k, workers=workers)
    pred.point_data[SIGNED], pred.point_data[ABSOLUTE] = p2r, np.abs(p2r)
    ref.point_data[SIGNED], ref.point_data[ABSOLUTE] = r2p, np.abs(r2p)
    summary = {"pred_to_ref": summarise(p2r, tolerance_mm), "ref_to_pred": summarise(r2p, tolerance_mm),
               "symmetric": summarise(np.concatenate([p2r, r2p]), tolerance_mm)}
    meta = {"distance_method": method, "candidate_vertices_k": k,
            "distance_engine": engines, "coordinate_system": ref.coordinate_system,
            "sign_convention": "negative = prediction boundary inside the reference (under-segmentation), "
                               "positive = outside (over-segmentation)",
            "structure": ref.metadata.get("structure") or pred.metadata.get("structure")}
    return ErrorMap(ref, pred, summary, meta)


def _stack3(img: Image) -> Image:
    """A one-slice image repeated into three identical slices (same origin, spacing and direction)."""
    from dataclasses import replace

    return replace(img, array=np.repeat(img.array, 3, axis=0), direction=img.direction.copy(),
                   metadata={**img.metadata, "planar_stacked": 3})


def errormap_from_labelmaps(reference: Image, prediction: Image, ref_label: int | None = None,
                            pred_label: int | None = None, structure: str | None = None, case: str | None = None,
                            smoothing_iterations: int = 0, decimation: float = 0.0, method: str = "exact",
                            k: int = DEFAULT_K, workers: int | None = None, tolerance_mm: float = 2.0) -> ErrorMap:
    """Build both surfaces from label maps (one label each, ``None`` = all foreground) and compare them.

    The two label maps need not share a grid (surfaces live in physical LPS millimetres) but their fields of view
    must overlap. When both maps are single slices (2D masks) the slice is stacked three times and only the
    vertical walls of the slabs are kept (:func:`~organsegbench.surfaces.mesh.walls_only`): otherwise the
    coinciding caps would cut every distance to at most half a slice; on the walls the errors are in-plane contour
    distances (each contour point appears once per wall row, with the same value).

    Raises:
        EmptyMaskError: the structure is empty in either map (no mesh is built).
        GeometryMismatchError: the grids do not overlap in physical space.
    """
    planar = reference.shape[0] == 1 and prediction.shape[0] == 1
    if planar:  # stack 3 copies so the slab has vertical walls between its chamfered caps
        reference = _stack3(reference)
        prediction = _stack3(prediction)
    ref_s = surface_from_labelmap(reference, ref_label, structure, smoothing_iterations, decimation=decimation,
                                  source=f"reference{' of ' + case if case else ''}")
    pred_s = surface_from_labelmap(prediction, pred_label, structure, smoothing_iterations, decimation=decimation,
                                   source=f"prediction{' of ' + case if case else ''}")
    if planar:
        normal = reference.direction[:, 2]
        ref_s, pred_s = walls_only(ref_s, normal), walls_only(pred_s, normal)
        for s in (ref_s, pred_s):
            s.metadata["slice_axes"] = [reference.direction[:, 0].tolist(), reference.direction[:, 1].tolist()]
    em = surface_errors(ref_s, pred_s, method=method, k=k, workers=workers, tolerance_mm=tolerance_mm)
    em.metadata["planar"] = planar
    em.metadata.update({"case": case, "structure": structure, "reference_label": ref_label,
                        "prediction_label": pred_label})
    em.metadata["provenance"] = provenance(step="surface error map", structure=structure, case=case,
                                           smoothing_iterations=smoothing_iterations, decimation=decimation,
                                           distance_method=method)
    return em
