"""Surface error map: the prediction segment's surface coloured by its signed distance (mm) to the reference
segment's surface, with a diverging colour table, a colour legend (scalar bar), a histogram table + plot, and
export of the mesh and the tables.

Surfaces, distances and statistics come from the engine (``organsegbench.surfaces.errormap``): negative = the prediction boundary lies inside the
reference (under-segmentation), positive = outside (over-segmentation).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import slicer
from OrganSegBenchLib.nodes import LogFn, labelmap_image_from_segmentation, volume_node_from_image
from OrganSegBenchLib.tables import export_table_csv, table_node_from_rows

logger = logging.getLogger(__name__)

SCALAR_NAME = "signed_distance_mm"  # the engine's array name (organsegbench.surfaces.errormap.SIGNED)
MESH_SUFFIXES = (".vtk", ".vtp", ".ply", ".stl", ".obj")


@dataclass
class ErrorMap:
    """Result of :func:`compute_error_map`.

    Attributes:
        model_node: prediction surface with point scalar ``signed_distance_mm`` (RAS, mm).
        color_node: the diverging colour table used for the scalars.
        histogram_node: table with ``bin_centre_mm``, ``count`` and ``fraction``.
        chart_node: plot chart of the histogram.
        stats: mean (mm), mean absolute (mm), 95th percentile absolute (mm), max absolute (mm), fraction within
            ``tolerance_mm``, number of vertices (prediction surface to reference).
        summary: the engine's full summary (``pred_to_ref``, ``ref_to_pred``, ``symmetric``; mm).
    """

    model_node: object
    color_node: object
    histogram_node: object
    chart_node: object
    stats: dict[str, float]
    summary: dict = field(default_factory=dict)


def diverging_color_node(name: str = "OrganSegBench signed distance", scene=None):
    """Blue (inside) - white (0 mm) - red (outside) procedural colour table on -1..1 (scaled by the display)."""
    scene = scene or slicer.mrmlScene
    node = scene.GetFirstNodeByName(name)
    if node is not None and node.IsA("vtkMRMLProceduralColorNode"):
        return node
    node = scene.AddNewNodeByClass("vtkMRMLProceduralColorNode", name)
    node.SetAttribute("Category", "OrganSegBench")
    tf = node.GetColorTransferFunction()
    tf.RemoveAllPoints()
    tf.AddRGBPoint(-1.0, 0.23, 0.30, 0.75)
    tf.AddRGBPoint(0.0, 0.95, 0.95, 0.95)
    tf.AddRGBPoint(1.0, 0.71, 0.02, 0.15)
    return node


def _segment_image(segmentation_node, segment_id: str, grid_node, log: LogFn):
    img, _ = labelmap_image_from_segmentation(segmentation_node, grid_node, segment_ids=[segment_id], log=log)
    return img


def compute_error_map(reference_node, reference_segment_id: str, prediction_node, prediction_segment_id: str,
                      volume_node=None, tolerance_mm: float = 2.0, bins: int = 40, range_mm: float | None = None,
                      smoothing_iterations: int = 0, log: LogFn | None = None) -> ErrorMap:
    """Build the error map of one prediction segment against one reference segment.

    Both are rasterised on ``volume_node``'s grid (else the reference's own grid; a prediction on another grid
    is resampled and ``log`` says so). ``range_mm``: symmetric colour range (default: max |distance|).

    Raises:
        EmptyMaskError: either segment is empty.
    """
    from organsegbench.surfaces.errormap import SIGNED, errormap_from_labelmaps

    log = log or logger.info
    ref_name = reference_node.GetSegmentation().GetSegment(reference_segment_id).GetName()
    pred_name = prediction_node.GetSegmentation().GetSegment(prediction_segment_id).GetName()
    ref_img = _segment_image(reference_node, reference_segment_id, volume_node, log)
    grid, tmp = volume_node, None
    if grid is None:
        grid = tmp = volume_node_from_image(ref_img, "__organsegbench_grid", labelmap=True)
    try:
        pred_img = _segment_image(prediction_node, prediction_segment_id, grid, log)
    finally:
        if tmp is not None:
            slicer.mrmlScene.RemoveNode(tmp.GetDisplayNode())
            slicer.mrmlScene.RemoveNode(tmp)
    engine_map = errormap_from_labelmaps(ref_img, pred_img, structure=pred_name,
                                         smoothing_iterations=smoothing_iterations, tolerance_mm=tolerance_mm)
    surface = engine_map.prediction
    distances = np.asarray(surface.point_data[SIGNED], dtype=float)
    polydata = surface.to_ras().to_polydata()  # carries signed_distance_mm and abs_distance_mm
    polydata.GetPointData().SetActiveScalars(SCALAR_NAME)

    scene = slicer.mrmlScene
    model = scene.AddNewNodeByClass("vtkMRMLModelNode", f"{pred_name} error map")
    model.SetAndObservePolyData(polydata)
    model.CreateDefaultDisplayNodes()
    color = diverging_color_node()
    limit = float(range_mm) if range_mm else float(max(np.abs(distances).max(), 1e-3))
    display = model.GetDisplayNode()
    display.SetActiveScalarName(SCALAR_NAME)
    display.SetAndObserveColorNodeID(color.GetID())
    display.SetScalarRangeFlag(slicer.vtkMRMLDisplayNode.UseManualScalarRange)
    display.SetScalarRange(-limit, limit)
    display.SetScalarVisibility(True)
    add_scalar_bar(model)

    summary = engine_map.summary["pred_to_ref"]
    stats = {"vertices": float(summary["n_vertices"]), "mean_mm": summary["mean_mm"],
             "mean_abs_mm": summary["mean_abs_mm"], "p95_abs_mm": summary["p95_abs_mm"],
             "max_abs_mm": summary["max_abs_mm"], "within_tolerance": summary[f"fraction_within_{tolerance_mm:g}mm"],
             "tolerance_mm": float(tolerance_mm)}
    hist_node, chart = histogram(distances, bins=bins, range_mm=limit, name=f"{pred_name} distance histogram")
    model.SetAttribute("OrganSegBench.provenance", json.dumps(engine_map.metadata.get("provenance", {}), default=str))
    log(f"{pred_name} vs {ref_name}: mean {stats['mean_mm']:.2f} mm, 95% of |d| <= {stats['p95_abs_mm']:.2f} mm, "
        f"{100 * stats['within_tolerance']:.1f}% within {tolerance_mm} mm")
    return ErrorMap(model, color, hist_node, chart, stats, engine_map.summary)


def add_scalar_bar(model_node):
    """A colour legend (scalar bar) for the model's scalars in the views (Slicer's colour legend node)."""
    logic = slicer.vtkSlicerColorLogic
    legend = logic.AddDefaultColorLegendDisplayNode(model_node)
    if legend is not None:
        legend.SetTitleText("Signed distance (mm)")
        legend.SetLabelFormat("%.1f")
    return legend


def histogram(distances: np.ndarray, bins: int = 40, range_mm: float | None = None, name: str = "histogram"):
    """Histogram of distances (mm) on a symmetric range as a table node and a bar chart."""
    from OrganSegBenchLib.tables import bar_chart

    limit = float(range_mm) if range_mm else float(max(np.abs(distances).max(), 1e-3))
    counts, edges = np.histogram(np.clip(distances, -limit, limit), bins=bins, range=(-limit, limit))
    centres = (edges[:-1] + edges[1:]) / 2
    rows = [{"bin_centre_mm": float(c), "count": float(n), "fraction": float(n / max(counts.sum(), 1))}
            for c, n in zip(centres, counts, strict=True)]
    table = table_node_from_rows(rows, name, units={"bin_centre_mm": "mm"})
    chart = bar_chart(table, "bin_centre_mm", "count", name, y_label="vertices")
    chart.SetXAxisTitle("signed distance (mm)")
    return table, chart


def vertex_table(model_node, name: str | None = None):
    """Per-vertex table: RAS position (mm) and signed distance (mm)."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    pd = model_node.GetPolyData()
    pts = vtk_to_numpy(pd.GetPoints().GetData())
    d = vtk_to_numpy(pd.GetPointData().GetArray(SCALAR_NAME))
    rows = [{"r_mm": float(p[0]), "a_mm": float(p[1]), "s_mm": float(p[2]), SCALAR_NAME: float(v)}
            for p, v in zip(pts, d, strict=True)]
    return table_node_from_rows(rows, name or f"{model_node.GetName()} vertices")


def export_mesh(model_node, path: str | Path) -> Path:
    """Write the coloured mesh (with the distance array) to VTK/VTP/PLY/STL/OBJ through a model storage node."""
    from organsegbench.errors import OrganSegBenchError

    p = Path(path)
    suffix = "".join(p.suffixes[-1:]).lower()
    if suffix not in MESH_SUFFIXES:
        raise OrganSegBenchError(f"cannot export a mesh to {p.name!r}", f"use one of {', '.join(MESH_SUFFIXES)}")
    p.parent.mkdir(parents=True, exist_ok=True)
    storage = slicer.vtkMRMLModelStorageNode()
    storage.SetFileName(str(p))
    storage.SetCoordinateSystem(slicer.vtkMRMLStorageNode.CoordinateSystemRAS)
    if not storage.WriteData(model_node):
        raise OSError(f"could not write mesh {model_node.GetName()!r} to {p}")
    return p


def export_tables(error_map: ErrorMap, folder: str | Path, stem: str) -> list[Path]:
    """Write ``<stem>_histogram.csv`` and ``<stem>_vertices.csv`` into ``folder``."""
    folder = Path(folder)
    vertices = vertex_table(error_map.model_node)
    try:
        return [export_table_csv(error_map.histogram_node, folder / f"{stem}_histogram.csv"),
                export_table_csv(vertices, folder / f"{stem}_vertices.csv")]
    finally:
        slicer.mrmlScene.RemoveNode(vertices)
