"""Render the extension's screenshots (the URLs in CMakeLists.txt) headless with slicer-core.

Views are drawn by Slicer's own slice logic and displayable managers (``OrganSegBenchLib.render``) from the
module logic's real output on the TotalSegmentator sample CT; they show the views, not the module panels (the
Qt panels need the Slicer desktop app).

Usage (from the repository root, after ``pip install -e ".[slicer]"`` and ``organsegbench sample-data``)::

    VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow python docs/screenshots/make_screenshots.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT / m) for m in ("OrganSegBench", "SegmentationReview", "ErrorDistribution")]

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

VIEW_PX = (360, 360)
STRUCTURE = "spleen"  # lies wholly inside the sample CT's field of view (the liver is cut by it)


def _ct_scene():
    from OrganSegBenchLib import nodes, segments
    from OrganSegBenchLib.headless import create_headless_scene

    from organsegbench import sample_data
    from organsegbench.io import read_image

    headless = create_headless_scene()
    sd = sample_data.fetch(progress=False)
    volume = nodes.volume_node_from_image(read_image(sd.path("abdomen_ct", "image")), "abdomen CT")
    volume.GetDisplayNode().SetAutoWindowLevel(False)
    volume.GetDisplayNode().SetWindowLevel(400, 40)
    normal = segments.load_segmentation_file(sd.path("abdomen_ct", "seg_normal"), volume, "TotalSegmentator",
                                             vocabulary="total")
    fast = segments.load_segmentation_file(sd.path("abdomen_ct", "seg_fast"), volume, "TotalSegmentator --fast",
                                           vocabulary="total")
    return headless, volume, normal, fast


def _segment_id(node, name: str) -> str:
    from OrganSegBenchLib.segments import segment_infos

    return next(i["id"] for i in segment_infos(node) if i["name"] == name)


def _figure(images: list[list[np.ndarray]], titles: list[list[str]], path: Path, suptitle: str) -> None:
    rows, cols = len(images), max(len(r) for r in images)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.3 * rows), squeeze=False, facecolor="black")
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(images[r]):
                ax.imshow(images[r][c])
                ax.set_title(titles[r][c], color="white", fontsize=9)
    fig.suptitle(suptitle, color="white", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100, facecolor="black")
    plt.close(fig)


def segment_screenshot(headless, volume, normal) -> Path:
    from OrganSegBenchLib import render

    scene = headless.scene
    normal.GetDisplayNode().SetVisibility(True)
    liver = _segment_id(normal, "liver")
    centre = normal.GetSegmentCenterRAS(liver)
    images, titles = [], []
    for orientation in ("Axial", "Coronal"):
        view = scene.AddNewNodeByClass("vtkMRMLSliceNode", f"shot{orientation}")
        view.SetLayoutName(f"shot{orientation}")
        view.SetOrientation(orientation)
        view.SetDimensions(*VIEW_PX, 1)
        render.fit_slice_to_volume(view, volume, centre)
        comp = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
        comp.SetLayoutName(f"shot{orientation}")
        comp.SetBackgroundVolumeID(volume.GetID())
        images.append(render.render_slice_view(view, VIEW_PX, headless.app_logic))
        titles.append(f"{orientation}: {normal.GetName()} segments")
    normal.CreateClosedSurfaceRepresentation()
    view3d = scene.AddNewNodeByClass("vtkMRMLViewNode")
    view3d.SetBoxVisible(False)
    view3d.SetAxisLabelsVisible(False)
    images.append(render.render_3d_view(view3d, VIEW_PX, headless.app_logic))
    titles.append("3D: named, coloured, SNOMED-coded segments")
    path = OUT / "Segment.png"
    _figure([images], [titles], path, "OrganSegBench — model output imported as segments")
    return path


def review_screenshot(headless, volume, normal, fast) -> Path:
    from OrganSegBenchLib import render
    from SegmentationReviewLib.review import ReviewLogic

    review = ReviewLogic(volume)
    review.add_segmentation_node(normal, "TotalSegmentator")
    review.add_segmentation_node(fast, "TotalSegmentator --fast")
    views = review.show()
    centre = review.structure_centre("pancreas")
    images, titles = [], []
    for model, model_views in views.items():
        row, row_titles = [], []
        for view in model_views:
            render.fit_slice_to_volume(view, volume, centre)
            view.SetFieldOfView(*(np.array(view.GetFieldOfView()) * [0.45, 0.45, 1]))
            row.append(render.render_slice_view(view, VIEW_PX, headless.app_logic))
            row_titles.append(f"{model} — {view.GetOrientation()}")
        images.append(row)
        titles.append(row_titles)
    path = OUT / "Review.png"
    _figure(images, titles, path, "Segmentation Review — one row of linked views per model, centred on the pancreas")
    return path


def error_screenshot(headless, volume, normal, fast) -> Path:
    from ErrorDistributionLib.errormap import compute_error_map
    from OrganSegBenchLib import render
    from OrganSegBenchLib.tables import rows_from_table_node

    em = compute_error_map(normal, _segment_id(normal, STRUCTURE), fast, _segment_id(fast, STRUCTURE), volume,
                           range_mm=3.0)
    for node in (normal, fast):
        node.GetDisplayNode().SetVisibility(False)
    view3d = headless.scene.AddNewNodeByClass("vtkMRMLViewNode")
    view3d.SetBoxVisible(False)
    view3d.SetAxisLabelsVisible(False)
    view3d.SetBackgroundColor(0.1, 0.1, 0.12)
    view3d.SetBackgroundColor2(0.1, 0.1, 0.12)
    img = render.render_3d_view(view3d, (480, 400), headless.app_logic, azimuth_deg=-60, elevation_deg=20)
    rows = rows_from_table_node(em.histogram_node)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.2, 1]})
    a.imshow(img)
    a.axis("off")
    a.set_title(f"{STRUCTURE}, --fast vs normal: signed distance (blue -3 … red +3 mm)", fontsize=9)
    b.bar([r["bin_centre_mm"] for r in rows], [r["count"] for r in rows],
          width=rows[1]["bin_centre_mm"] - rows[0]["bin_centre_mm"], color="#5b7db1")
    b.set_xlabel("signed distance (mm): negative = inside the reference")
    b.set_ylabel("vertices")
    s = em.stats
    b.set_title(f"mean {s['mean_mm']:.2f} mm, 95% of |d| ≤ {s['p95_abs_mm']:.2f} mm", fontsize=9)
    fig.tight_layout()
    path = OUT / "ErrorDistribution.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    headless, volume, normal, fast = _ct_scene()
    for path in (segment_screenshot(headless, volume, normal), review_screenshot(headless, volume, normal, fast),
                 error_screenshot(headless, volume, normal, fast)):
        print(path)  # noqa: T201


if __name__ == "__main__":
    main()
