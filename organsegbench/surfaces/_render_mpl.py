"""matplotlib fallback renderer behind :func:`organsegbench.surfaces.export.render_png` (no OpenGL needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from organsegbench.surfaces.mesh import Surface

#: faces drawn at most (a seeded subsample above this keeps the rendering quick; display only)
MAX_FACES = 150_000


def render_mpl(surface: Surface, path: Path, values: np.ndarray, limit_mm: float, views: list[str], title: str,
               bar_label: str, size: int, view_dirs: dict, view_titles: dict) -> None:
    """Render one 3D axes per view with faces coloured by the mean of their vertex values, plus a colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    from organsegbench.surfaces.export import CMAP

    faces = surface.faces
    if len(faces) > MAX_FACES:
        keep = np.sort(np.random.default_rng(0).choice(len(faces), MAX_FACES, replace=False))
        faces = faces[keep]
    norm = Normalize(-limit_mm, limit_mm)
    cmap = colormaps[CMAP]
    face_vals = values[faces].mean(axis=1)
    flip = np.array([-1.0, -1.0, 1.0]) if surface.coordinate_system == "RAS" else np.ones(3)
    dpi = 100
    fig = plt.figure(figsize=((size * len(views) + 150) / dpi, (size + 46) / dpi), dpi=dpi)
    fig.suptitle(title, fontsize=12, fontweight="bold")
    lo, hi = surface.points.min(axis=0), surface.points.max(axis=0)
    half = (hi - lo).max() / 2.0
    mid = (hi + lo) / 2.0
    for i, view in enumerate(views):
        ax = fig.add_subplot(1, len(views), i + 1, projection="3d")
        coll = Poly3DCollection(surface.points[faces], facecolors=cmap(norm(face_vals)), edgecolor="none")
        ax.add_collection3d(coll)
        for setter, j in ((ax.set_xlim, 0), (ax.set_ylim, 1), (ax.set_zlim, 2)):
            setter(mid[j] - half, mid[j] + half)
        d = np.asarray(view_dirs[view][0]) * flip
        elev = float(np.degrees(np.arcsin(np.clip(d[2], -1, 1))))
        azim = float(np.degrees(np.arctan2(d[1], d[0])))
        ax.view_init(elev=elev, azim=azim)
        ax.set_box_aspect((1, 1, 1))
        ax.set_axis_off()
        ax.set_title(view_titles[view] + " (matplotlib)", fontsize=9)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    cbar = fig.colorbar(sm, ax=fig.axes, fraction=0.04, pad=0.02)
    cbar.set_label(bar_label)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
