"""matplotlib fallback renderer behind :func:`organsegbench.surfaces.export.render_png` (no OpenGL needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from organsegbench.surfaces.mesh import Surface

#: faces drawn at most (a seeded subsample above this keeps the rendering quick; display only)
MAX_FACES = 150_000


def render_mpl(surface: Surface, path: Path, values: np.ndarray, crange: tuple[float, float], cmap_name: str,
               views: list[str], title: str, bar_label: str, size: int, view_dirs: dict, view_titles: dict) -> None:
    """Render one 3D axes per view with faces coloured by the mean of their vertex values, plus a colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    faces = surface.faces
    if len(faces) > MAX_FACES:
        keep = np.sort(np.random.default_rng(0).choice(len(faces), MAX_FACES, replace=False))
        faces = faces[keep]
    norm = Normalize(*crange)
    cmap = colormaps[cmap_name]
    face_vals = values[faces].mean(axis=1)
    flip = np.array([-1.0, -1.0, 1.0]) if surface.coordinate_system == "RAS" else np.ones(3)
    dpi = 100
    n_lines = title.count("\n") + 1
    fig = plt.figure(figsize=(max(size * len(views) + 150, 720) / dpi, (size + 18 + 24 * n_lines) / dpi), dpi=dpi)
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


def render_planar(surface: Surface, path: Path, values: np.ndarray, crange: tuple[float, float], cmap: str,
                  title: str, bar_label: str) -> None:
    """A single-slice error map: the contour points in the slice plane (mm), coloured by value, image-like
    orientation (first grid axis to the right, second downwards)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    axes = surface.metadata.get("slice_axes") or [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    normal = np.asarray(surface.metadata.get("slice_normal", [0.0, 0.0, 1.0]))
    height = surface.points @ normal
    top = height >= np.median(height)  # one rim of the wall ribbon (the other one repeats it)
    u = surface.points[top] @ np.asarray(axes[0])
    v = surface.points[top] @ np.asarray(axes[1])
    n_lines = title.count("\n") + 1
    fig, ax = plt.subplots(figsize=(7.2, 6.0 + 0.25 * n_lines), dpi=100)
    order = np.argsort(np.abs(values[top]))  # draw large errors on top
    sc = ax.scatter(u[order], v[order], c=values[top][order], cmap=cmap, norm=Normalize(*crange),
                    s=9, linewidths=0)
    ax.set_aspect("equal")
    ax.invert_yaxis()
    pad = 0.1 * max(np.ptp(u), np.ptp(v), 1.0)
    ax.set_xlim(u.min() - pad, u.max() + pad)
    ax.set_ylim(v.max() + pad, v.min() - pad)
    ax.set_xlabel("first grid axis (mm)")
    ax.set_ylabel("second grid axis (mm)")
    ax.set_title(title, fontsize=10, loc="left")
    cbar = fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.03)
    cbar.set_label(bar_label)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
