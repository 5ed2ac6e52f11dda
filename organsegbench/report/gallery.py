"""Worst-case gallery: one overlay thumbnail per listed worst case (image in grey, reference contour green,
prediction contour red) on the axial slice where the reference structure is largest."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from organsegbench.report.plots import _plt, to_data_uri

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _read(path: str, vocabulary: str | None) -> tuple[Any, dict[int, str]]:
    from organsegbench.cohort.case import read_labelmap

    return read_labelmap(Path(path), vocabulary)


@lru_cache(maxsize=8)
def _harmonised_lps(path: str, vocabulary: str | None, level: str, onto: str | None, onto_vocabulary: str | None
                    ) -> tuple[Any, dict[int, str]]:
    """Label map harmonised to ``level``, resampled onto the grid of ``onto`` (when given), reoriented to LPS."""
    from organsegbench.cohort.case import harmonise
    from organsegbench.io.geometry import align_to
    from organsegbench.viz.montage import to_lps

    img, names = _read(path, vocabulary)
    if onto is not None:
        img = align_to(img, _read(onto, onto_vocabulary)[0], resample=True)
    arr, names, _ = harmonise(img.array, names, level)
    return to_lps(img.with_array(np.asarray(arr, dtype=np.uint16))), names


@lru_cache(maxsize=2)
def _image_lps(path: str, ref_path: str, ref_vocabulary: str | None) -> np.ndarray:
    """The image on the reference grid, reoriented to LPS, as float."""
    from organsegbench.io import read_image
    from organsegbench.io.geometry import resample_to, same_grid
    from organsegbench.viz.montage import to_lps

    ref_img = _read(ref_path, ref_vocabulary)[0]
    img = read_image(path)
    if not same_grid(img, ref_img):
        img = resample_to(img, ref_img, is_label=False)
    return to_lps(img).array.astype(float)


def _mask(lps: Any, names: dict[int, str], structure: str) -> np.ndarray:
    values = [v for v, n in names.items() if n == structure]
    return np.isin(lps.array, values) if values else np.zeros(lps.array.shape, bool)


def clear_cache() -> None:
    """Free the label maps and images kept while a gallery is drawn."""
    for f in (_read, _harmonised_lps, _image_lps):
        f.cache_clear()


#: soft-tissue CT window (HU) used when the image looks like CT (minimum below -500)
CT_WINDOW = (-160.0, 240.0)


def thumbnail(image_path: str | None, ref_path: str, pred_path: str, structure: str, title: str,
              ref_vocabulary: str | None = None, pred_vocabulary: str | None = None, level: str = "harmonised",
              size_px: int = 160) -> str:
    """Data URI of an overlay thumbnail for one case x model x structure (raises on unreadable inputs).

    Everything is resampled onto the reference grid, then reoriented to LPS (no interpolation) so the slice is
    shown in radiological convention: anterior up, the patient's right on the left of the picture.
    """
    plt = _plt()
    lps, ref_names = _harmonised_lps(ref_path, ref_vocabulary, level, None, None)
    plps, pred_names = _harmonised_lps(pred_path, pred_vocabulary, level, ref_path, ref_vocabulary)
    ref, pred = _mask(lps, ref_names, structure), _mask(plps, pred_names, structure)
    vol = _image_lps(image_path, ref_path, ref_vocabulary) if image_path else np.zeros(ref.shape, float)
    base = ref if ref.any() else pred
    z = int(np.argmax(base.reshape(base.shape[0], -1).sum(axis=1))) if base.any() else base.shape[0] // 2
    sl = vol[z]
    both = ref[z] | pred[z]
    if both.any():  # crop around the structure with a margin
        ys, xs = np.nonzero(both)
        m = max(8, int(0.25 * max(np.ptp(ys), np.ptp(xs))))
        y0, y1 = max(0, ys.min() - m), min(both.shape[0], ys.max() + m + 1)
        x0, x1 = max(0, xs.min() - m), min(both.shape[1], xs.max() + m + 1)
    else:
        y0, y1, x0, x1 = 0, both.shape[0], 0, both.shape[1]
    if vol.min() < -500:
        lo, hi = CT_WINDOW
    else:
        lo, hi = np.percentile(sl, [1, 99]) if sl.any() else (0.0, 1.0)
    sp = lps.spacing  # (x, y, z) mm: keep the physical aspect ratio
    fig, ax = plt.subplots(figsize=(size_px / 80, size_px / 80))
    ax.imshow(sl[y0:y1, x0:x1], cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, aspect=sp[1] / sp[0],
              interpolation="nearest")
    for mask, colour in ((ref, "lime"), (pred, "red")):
        cut = mask[z, y0:y1, x0:x1]
        if cut.any() and not cut.all():
            ax.contour(cut.astype(float), levels=[0.5], colors=colour, linewidths=1.0)
    ax.set_title(title.replace(" | ", "\n", 1), fontsize=6)
    ax.axis("off")
    return to_data_uri(fig, dpi=80)


def gallery(worst: pd.DataFrame, table: pd.DataFrame, cases: pd.DataFrame, metric: str = "dsc",
            limit: int = 24, level: str = "harmonised") -> list[dict[str, Any]]:
    """Thumbnails (dicts: title, uri or error) of the ``limit`` worst of the listed worst cases by ``metric``
    (worst first, across models and structures)."""
    from organsegbench.analysis.robustness import WORSE_IS_HIGHER

    rows = worst[(worst["metric"] == metric) & worst["case"].notna()]
    rows = rows.sort_values(["value", "model", "structure"],
                            ascending=[not WORSE_IS_HIGHER.get(metric, True), True, True]).head(limit)
    info = cases.set_index(cases["case"].astype(str))
    out = []
    for r in rows.itertuples():
        title = f"{r.case} | {r.model} | {r.structure} | {metric}={r.value:.3g}"
        try:
            src = table[(table["case"] == r.case) & (table["model"] == r.model)].iloc[0]
            c = info.loc[str(r.case)]
            image = str(c.get("image", "") or "") or None
            uri = thumbnail(image, str(c["reference"]), str(src["prediction_file"]), str(r.structure), title,
                            ref_vocabulary=str(src.get("reference_vocabulary", "") or "") or None,
                            pred_vocabulary=str(src.get("prediction_vocabulary", "") or "") or None, level=level)
            out.append({"title": title, "uri": uri, "error": ""})
        except Exception as exc:  # a thumbnail must never stop the report; say why it is absent
            log.warning("no thumbnail for %s: %s", title, exc)
            out.append({"title": title, "uri": "", "error": f"thumbnail unavailable: {exc}"})
    clear_cache()
    return out
