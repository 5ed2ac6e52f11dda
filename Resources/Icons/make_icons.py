"""Draw the extension and module icons (128x128 PNG) with matplotlib; run once after changing the artwork.

Usage: ``python Resources/Icons/make_icons.py`` from the repository root.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Polygon  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SIZE_PX = 128


def _canvas(bg: str):
    fig = plt.figure(figsize=(1, 1), dpi=SIZE_PX)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((0.04, 0.04), 0.92, 0.92, boxstyle="round,pad=0,rounding_size=0.16",
                                facecolor=bg, edgecolor="none"))
    return fig, ax


def _liver_outline(cx: float, cy: float, scale: float) -> np.ndarray:
    """A smooth liver-like closed curve (polar radius modulated by low harmonics)."""
    t = np.linspace(0, 2 * np.pi, 200)
    r = 1 + 0.28 * np.cos(t) + 0.12 * np.cos(2 * t + 0.6) - 0.08 * np.sin(3 * t)
    x = cx + scale * r * np.cos(t) * 1.25
    y = cy + scale * r * np.sin(t) * 0.8 - 0.05 * scale * np.cos(t) ** 2
    return np.column_stack([x, y])


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=SIZE_PX, transparent=True)
    plt.close(fig)


def extension_icon(path: Path) -> None:
    fig, ax = _canvas("#1d3557")
    ax.add_patch(Polygon(_liver_outline(0.5, 0.52, 0.26), closed=True, facecolor="#c8553d", edgecolor="#f1faee",
                         linewidth=2.5))
    ax.add_patch(Polygon(_liver_outline(0.43, 0.5, 0.12), closed=True, facecolor="none", edgecolor="#ffd166",
                         linewidth=2, linestyle="--"))
    ax.plot([0.18, 0.82], [0.16, 0.16], color="#a8dadc", linewidth=3)
    for i, h in enumerate((0.05, 0.09, 0.07)):
        ax.add_patch(FancyBboxPatch((0.26 + 0.18 * i, 0.16), 0.1, h, boxstyle="square,pad=0", facecolor="#a8dadc"))
    _save(fig, path)


def review_icon(path: Path) -> None:
    fig, ax = _canvas("#264653")
    ax.add_patch(Polygon(_liver_outline(0.45, 0.55, 0.22), closed=True, facecolor="none", edgecolor="#e9c46a",
                         linewidth=2.5))
    ax.add_patch(Polygon(_liver_outline(0.55, 0.5, 0.22), closed=True, facecolor="none", edgecolor="#2a9d8f",
                         linewidth=2.5))
    ax.plot([0.58, 0.68, 0.86], [0.22, 0.12, 0.34], color="#f1faee", linewidth=5, solid_capstyle="round")
    _save(fig, path)


def error_icon(path: Path) -> None:
    fig, ax = _canvas("#222222")
    pts = _liver_outline(0.5, 0.52, 0.27)
    cmap = plt.get_cmap("coolwarm")
    for i in range(len(pts) - 1):
        ax.plot(pts[i:i + 2, 0], pts[i:i + 2, 1], color=cmap(0.5 + 0.5 * np.sin(3 * i / len(pts) * 2 * np.pi)),
                linewidth=6, solid_capstyle="round")
    _save(fig, path)


def module_icon(path: Path) -> None:
    fig, ax = _canvas("#1d3557")
    ax.add_patch(Polygon(_liver_outline(0.5, 0.5, 0.28), closed=True, facecolor="#c8553d", edgecolor="#f1faee",
                         linewidth=2.5))
    ax.add_patch(FancyBboxPatch((0.3, 0.34), 0.3, 0.3, boxstyle="square,pad=0", facecolor="none",
                                edgecolor="#ffd166", linewidth=2.5))
    _save(fig, path)


if __name__ == "__main__":
    extension_icon(ROOT / "Resources" / "Icons" / "OrganSegBench.png")
    module_icon(ROOT / "OrganSegBench" / "Resources" / "Icons" / "OrganSegBench.png")
    review_icon(ROOT / "SegmentationReview" / "Resources" / "Icons" / "SegmentationReview.png")
    error_icon(ROOT / "ErrorDistribution" / "Resources" / "Icons" / "ErrorDistribution.png")
