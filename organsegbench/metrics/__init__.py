"""Segmentation metrics in physical units (mm, mL), exact against medpy (DSC/HD/HD95/ASSD) and surface-distance
(NSD), fast on large volumes (per-label bounding boxes, k-d tree surface distances).

Entry points: :func:`evaluate_pair` (every metric for every label of two label maps) and one function per
metric (boolean masks in, float out; NaN where undefined — see :mod:`.results` for the empty-mask policy).
"""

from organsegbench.metrics.distance import asd_pred_to_ref, asd_ref_to_pred, assd, hd, hd95, nsd
from organsegbench.metrics.multilabel import evaluate_pair
from organsegbench.metrics.overlap import dice, iou, precision, sensitivity
from organsegbench.metrics.registry import METRICS, MetricSpec, resolve_metric, resolve_metrics
from organsegbench.metrics.results import BOTH_EMPTY, PREDICTION_EMPTY, REFERENCE_EMPTY, MetricResult
from organsegbench.metrics.volume import relative_volume_difference, volume_error_rate, volume_ml

dsc = dice

__all__ = [
    "BOTH_EMPTY", "METRICS", "PREDICTION_EMPTY", "REFERENCE_EMPTY", "MetricResult", "MetricSpec",
    "asd_pred_to_ref", "asd_ref_to_pred", "assd", "dice", "dsc", "evaluate_pair", "hd", "hd95", "iou", "nsd",
    "precision", "relative_volume_difference", "resolve_metric", "resolve_metrics", "sensitivity",
    "volume_error_rate", "volume_ml",
]
