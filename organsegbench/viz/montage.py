"""Overlay montages: axial CT slices with two label maps drawn as contours, in radiological display.

Images are reoriented to LPS first (rows run anterior -> posterior, columns patient right -> left, i.e. the
patient's right is on the left of the picture, as radiologists read axial CT).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from organsegbench.io.image import Image


def to_lps(img: Image) -> Image:
    """Reorient (by axis permutation/flips only, no interpolation) to the LPS orientation."""
    out = sitk.DICOMOrient(img.to_sitk(), "LPS")
    return Image.from_sitk(out, **img.metadata)


def pick_slices(mask: np.ndarray, n: int) -> list[int]:
    """``n`` axial slice indices spread over the extent of ``mask`` (or the whole volume when it is empty)."""
    zs = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
    lo, hi = (int(zs[0]), int(zs[-1])) if zs.size else (0, mask.shape[0] - 1)
    return sorted({int(round(v)) for v in np.linspace(lo, hi, n + 2)[1:-1]}) or [lo]


def overlay_montage(ct: Image, first: Image, second: Image, out_png: str | Path, labels: dict[int, str],
                    names: tuple[str, str] = ("reference", "prediction"), n_slices: int = 6,
                    window: tuple[float, float] = (-160.0, 240.0), title: str = "") -> Path:
    """Write a PNG with ``n_slices`` axial slices: CT (window in HU) with ``first`` as solid and ``second`` as
    dashed contours in one colour per label, and a bottom row marking voxels where the two maps disagree.

    All three images must share one grid (check with :func:`organsegbench.io.geometry.require_same_grid`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    ct_l, a_l, b_l = to_lps(ct), to_lps(first), to_lps(second)
    a, b = a_l.array, b_l.array
    slices = pick_slices((a > 0) | (b > 0), n_slices)
    sy, sx = ct_l.spacing[1], ct_l.spacing[0]
    present = sorted((set(np.unique(a[slices]).tolist()) | set(np.unique(b[slices]).tolist())) - {0})
    cmap = matplotlib.colormaps["tab20"]
    colours = {lab: cmap(i % 20) for i, lab in enumerate(present)}
    fig, axes = plt.subplots(2, len(slices), figsize=(2.6 * len(slices), 5.6), squeeze=False)
    for col, k in enumerate(slices):
        img = np.clip(ct_l.array[k].astype(float), *window)
        for row in range(2):
            ax = axes[row, col]
            ax.imshow(img, cmap="gray", aspect=sy / sx, interpolation="nearest")
            ax.set_axis_off()
        ax = axes[0, col]
        for lab in present:
            for arr, style in ((a[k], "-"), (b[k], "--")):
                m = arr == lab
                if m.any():
                    ax.contour(m, levels=[0.5], colors=[colours[lab]], linewidths=0.8, linestyles=style)
        ax.set_title(f"slice {k}", fontsize=8)
        diff = (a[k] != b[k]) & ((a[k] > 0) | (b[k] > 0))
        axes[1, col].imshow(np.ma.masked_where(~diff, diff), cmap="autumn", alpha=0.9, aspect=sy / sx,
                            interpolation="nearest")
        # inside the panel: a title above the bottom row would sit under the top row's images
        axes[1, col].text(0.02, 0.98, f"disagree: {int(diff.sum())} vox", transform=axes[1, col].transAxes,
                          fontsize=7, color="white", va="top", ha="left")
    handles = [Line2D([], [], color="k", ls="-", label=names[0]), Line2D([], [], color="k", ls="--", label=names[1])]
    handles += [Line2D([], [], color=colours[lab], lw=3, label=labels.get(int(lab), str(lab)))
                for lab in present[:12]]
    fig.legend(handles=handles, loc="lower center", ncol=min(7, len(handles)), fontsize=7, frameon=False)
    fig.suptitle(f"{title or f'{names[0]} (solid) vs {names[1]} (dashed)'}\n"
                 "bottom row: voxels the two label differently (red)", fontsize=10)
    fig.text(0.01, 0.01, "axial, radiological view (patient right on image left)", fontsize=6)
    # fixed margins: tight_layout lets the two rows of aspect-locked panels overlap
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.1, top=0.88, wspace=0.04, hspace=0.06)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
