"""Evaluate a prediction segmentation node against a reference node: structures matched by terminology code,
then by name (across vocabularies, via ``organsegbench.labels``), metrics by ``organsegbench.metrics``.

Results are rows ``{"structure", <metric>: value, ...}`` (distances in mm, volumes in mL); see
:mod:`OrganSegBenchLib.tables` for the table node, CSV export and plot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from OrganSegBenchLib.nodes import LogFn, labelmap_image_from_segmentation, volume_node_from_image
from OrganSegBenchLib.segments import segment_infos

logger = logging.getLogger(__name__)


@dataclass
class NodeMatch:
    """Structures matched across several segmentation nodes.

    Attributes:
        match: the engine's ``StructureMatch`` (inputs = model names).
        segment_ids: per model, 1-based entry index -> segment ID (the indices used in ``match`` rows).
    """

    match: object
    segment_ids: dict[str, dict[int, str]]

    def segments_of(self, structure: str, model: str) -> list[str]:
        """Segment IDs of ``structure`` in ``model`` (empty when the model lacks it)."""
        row = self.match.row(structure)
        i = list(self.match.inputs).index(model)
        return [self.segment_ids[model][v] for v in row.labels[i]]

    def rows(self) -> list[dict]:
        """Table rows: structure, display name, number of models that have it, one yes/no column per model."""
        return [{"structure": r.structure, "display_name": r.display_name, "models": r.count,
                 **{m: ("yes" if p else "") for m, p in zip(self.match.inputs, r.present, strict=True)}}
                for r in self.match.rows]


def match_segmentation_nodes(nodes: dict[str, object], level: str = "harmonised") -> NodeMatch:
    """Match the structures of several segmentation nodes (``{model name: node}``)."""
    from organsegbench.labels import match_structures

    dicts, ids = [], {}
    for model, node in nodes.items():
        entries, id_map = {}, {}
        for i, info in enumerate(segment_infos(node), start=1):
            entries[i] = {"name": info["name"], "type": info["codes"]["type"],
                          "modifier": info["codes"]["type_modifier"]}
            id_map[i] = info["id"]
        dicts.append(entries)
        ids[model] = id_map
    return NodeMatch(match_structures(*dicts, names=list(nodes), level=level), ids)


def _names(node) -> str:
    names = [i["name"] for i in segment_infos(node)]
    return ", ".join(names[:12]) + (f" … ({len(names)} in all)" if len(names) > 12 else "") if names else "none"


def common_structures(reference_node, prediction_node) -> tuple[NodeMatch, list[str]]:
    """Matched structures of two nodes; OrganSegBenchError naming both segment lists when nothing is shared."""
    from organsegbench.errors import OrganSegBenchError

    nm = match_segmentation_nodes({"reference": reference_node, "prediction": prediction_node})
    common = [r.structure for r in nm.match.rows if all(r.present)]
    if not common:
        raise OrganSegBenchError(
            f"segmentations {reference_node.GetName()!r} and {prediction_node.GetName()!r} have no structure in "
            f"common (reference: {_names(reference_node)}; prediction: {_names(prediction_node)})",
            "choose two segmentations of the same anatomy, or give segments standard names or terminology "
            "(for example 'liver', 'kidney_left')",
        )
    return nm, common


def structure_labelmaps(reference_node, prediction_node, volume_node=None, log: LogFn | None = None):
    """Both segmentations as label maps on one grid with one label per common structure.

    Returns ``(ref_image, pred_image, {label: structure})``. The grid is ``volume_node``'s, else the reference's
    own; a prediction on another grid is resampled (said in ``log``).
    """
    log = log or logger.info
    nm, common = common_structures(reference_node, prediction_node)
    ref_img, _ = labelmap_image_from_segmentation(reference_node, volume_node, log=log)
    grid_node = volume_node
    tmp = None
    if grid_node is None:
        tmp = grid_node = volume_node_from_image(ref_img, "__organsegbench_grid", labelmap=True)
    try:
        pred_img, _ = labelmap_image_from_segmentation(prediction_node, grid_node, log=log)
    finally:
        if tmp is not None:
            tmp.GetScene().RemoveNode(tmp.GetDisplayNode())
            tmp.GetScene().RemoveNode(tmp)
    ref_ids = list(nm.segment_ids["reference"].values())
    pred_ids = list(nm.segment_ids["prediction"].values())
    # one lookup table per side: exported label (1-based segment order) -> common structure number (0 = other)
    ref_lut = np.zeros(len(ref_ids) + 1, np.uint16)
    pred_lut = np.zeros(len(pred_ids) + 1, np.uint16)
    labels = {}
    for k, structure in enumerate(common, start=1):
        for sid in nm.segments_of(structure, "reference"):
            ref_lut[ref_ids.index(sid) + 1] = k
        for sid in nm.segments_of(structure, "prediction"):
            pred_lut[pred_ids.index(sid) + 1] = k
        labels[k] = structure
    ref_arr = ref_lut[ref_img.array.astype(np.intp)]
    pred_arr = pred_lut[pred_img.array.astype(np.intp)]
    return ref_img.with_array(ref_arr), pred_img.with_array(pred_arr), labels


def evaluate_segmentations(reference_node, prediction_node, volume_node=None, metrics: list[str] | None = None,
                           nsd_tolerance_mm: float = 2.0, log: LogFn | None = None) -> tuple[list[dict], dict]:
    """Metrics per common structure.

    Returns ``(rows, units)``: one row per structure (``structure`` then one column per metric; NaN where a
    metric is undefined, with the reason in ``<metric>_note``) and ``{metric: unit}``.
    """
    from organsegbench.metrics import METRICS, evaluate_pair

    log = log or logger.info
    ref, pred, labels = structure_labelmaps(reference_node, prediction_node, volume_node, log)
    results = evaluate_pair(ref.array, pred.array, ref.spacing_zyx, labels=list(labels), metrics=metrics,
                            nsd_tolerance_mm=nsd_tolerance_mm)
    rows: dict[int, dict] = {k: {"structure": name} for k, name in labels.items()}
    for r in results:
        rows[r.label][r.metric] = float(r.value)
        if r.reason:
            rows[r.label][f"{r.metric}_note"] = r.reason
    units = {m: METRICS[m].unit for m in {r.metric for r in results} if METRICS[m].unit != "fraction"}
    log(f"evaluated {len(labels)} common structure(s): {', '.join(labels.values())}")
    return list(rows.values()), units
