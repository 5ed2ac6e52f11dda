"""Matplotlib figures of the report (Agg backend), returned as base64 PNG data URIs so the HTML is self-contained."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
import pandas as pd

#: structures per distribution figure (more are split over several figures)
STRUCTURES_PER_FIGURE = 24
#: model x structure groups with at most this many values also show every value as a dot
SHOW_POINTS_UP_TO = 10


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def to_data_uri(fig: Any, dpi: int = 80, tight: bool = True) -> str:
    """PNG of ``fig`` as a ``data:image/png;base64,…`` URI; the figure is closed. ``tight=False`` skips the
    (slow) tight bounding-box pass for figures laid out with ``tight_layout``."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def distribution_figures(table: pd.DataFrame, metric: str, unit: str = "") -> list[str]:
    """Violin + box plots of ``metric`` per structure (x) and model (colour), with the values themselves as dots
    for groups of at most :data:`SHOW_POINTS_UP_TO` cases; one data URI per chunk of
    :data:`STRUCTURES_PER_FIGURE` structures. Undefined values (NaN) are left out and counted in the title."""
    plt = _plt()
    from organsegbench.analysis._common import metric_rows

    rows = metric_rows(table, metric)
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    if rows.empty or rows["value"].notna().sum() == 0:  # nothing to draw (e.g. a structure absent everywhere)
        return []
    models = sorted(rows["model"].unique())
    structures = sorted(rows["structure"].unique())
    n_nan = int(rows["value"].isna().sum())
    colours = plt.get_cmap("tab10").colors
    out = []
    for start in range(0, len(structures), STRUCTURES_PER_FIGURE):
        chunk = structures[start:start + STRUCTURES_PER_FIGURE]
        width = max(5.0, 0.55 * len(chunk) * max(1, len(models)) ** 0.5 + 1.5)
        fig, ax = plt.subplots(figsize=(min(width, 18.0), 3.6))
        w = 0.8 / len(models)
        for mi, model in enumerate(models):
            pos, data = [], []
            for si, s in enumerate(chunk):
                v = rows[(rows["model"] == model) & (rows["structure"] == s)]["value"].dropna().to_numpy()
                if len(v):
                    pos.append(si - 0.4 + w * (mi + 0.5))
                    data.append(v)
            if not data:
                continue
            c = colours[mi % len(colours)]
            multi = [i for i, d in enumerate(data) if len(d) > 1 and np.ptp(d) > 0]
            if multi:
                parts = ax.violinplot([data[i] for i in multi], positions=[pos[i] for i in multi], widths=w * 0.95,
                                      showextrema=False)
                for body in parts["bodies"]:
                    body.set_facecolor(c)
                    body.set_alpha(0.35)
            ax.boxplot(data, positions=pos, widths=w * 0.45, patch_artist=True, showfliers=True,
                       boxprops={"facecolor": c, "alpha": 0.8}, medianprops={"color": "black"},
                       flierprops={"markersize": 3})
            for x, d in zip(pos, data, strict=True):  # few cases: show each value (a box of n = 1 is a bare line)
                if len(d) <= SHOW_POINTS_UP_TO:
                    ax.scatter(x + np.linspace(-w * 0.15, w * 0.15, len(d)) if len(d) > 1 else [x] * len(d), d,
                               color=c, s=16, zorder=3, edgecolors="black", linewidths=0.4)
            ax.plot([], [], color=c, linewidth=6, label=model)
        ax.set_xticks(range(len(chunk)))
        ax.set_xticklabels(chunk, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel(f"{metric}{f' ({unit})' if unit else ''}")
        title = f"{metric} per structure and model"
        if n_nan:
            title += f" ({n_nan} undefined values not shown)"
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        out.append(to_data_uri(fig, dpi=72, tight=False))
    return out


def bland_altman_figures(long: pd.DataFrame, key: str, quantity: str, unit_of: dict[str, str] | None = None,
                         limit: int = 24, order: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """(title, data URI) of a Bland-Altman plot per quantity x model against ``reference`` (at most ``limit``),
    in ``order`` (pairs of quantity, model) when given, else sorted by quantity and model."""
    from organsegbench.analysis._common import REFERENCE_MODEL
    from organsegbench.analysis.clinical import bland_altman_plot

    ref = long[long["model"] == REFERENCE_MODEL]
    groups = dict(list(long[long["model"] != REFERENCE_MODEL].groupby([quantity, "model"], sort=True)))
    out = []
    for q, model in order if order is not None else list(groups):
        grp = groups.get((q, model))
        if grp is None:
            continue
        m = grp.merge(ref[ref[quantity] == q][[key, "value"]], on=key, suffixes=("", "_ref"))
        if m["value"].notna().sum() < 2:
            continue
        unit = (unit_of or {}).get(q, "")
        title = f"{q}: {model} vs reference"
        fig = bland_altman_plot(m["value_ref"], m["value"], title=title, unit=unit)
        out.append((title, to_data_uri(fig)))
        if len(out) >= limit:
            break
    return out


def finite(x: Any) -> bool:
    """True for a finite number."""
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
