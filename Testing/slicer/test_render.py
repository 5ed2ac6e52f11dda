"""Offscreen rendering with Slicer's own displayable managers (EGL / software Mesa, no X): the review layout
really shows each model's segmentation only in its own row, and the error map renders with its colours."""

from __future__ import annotations

import os

import numpy as np
import pytest
import synthetic

from organsegbench.io import Segmentation, SegmentInfo

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
SHAPE = (20, 40, 40)


PROBE = """
import vtk
rw = vtk.vtkRenderWindow(); rw.SetOffScreenRendering(1); rw.SetSize(8, 8)
rw.AddRenderer(vtk.vtkRenderer()); rw.Render()
"""


@pytest.fixture(scope="module")
def offscreen() -> None:
    """Skip when this machine cannot open an offscreen OpenGL context (probed in a child: a failed EGL/GLX
    initialisation can abort the process instead of raising)."""
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"offscreen rendering unavailable (exit {probe.returncode}): {probe.stderr.strip()[-300:]}")


def _render_or_skip(fn, *args, **kwargs) -> np.ndarray:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # no OpenGL context on this machine
        pytest.skip(f"offscreen rendering unavailable: {exc}")


def _colour_pixels(rgb: np.ndarray, channel: int) -> int:
    """Pixels where ``channel`` clearly dominates the other two."""
    c = rgb.astype(int)
    others = [i for i in range(3) if i != channel]
    return int(((c[..., channel] > 120) & (c[..., others[0]] < 60) & (c[..., others[1]] < 60)).sum())


def test_review_rows_show_only_their_own_segmentation(mrml_scene, offscreen) -> None:
    from OrganSegBenchLib import nodes, render, segments
    from SegmentationReviewLib.layout import view_tag
    from SegmentationReviewLib.review import ReviewLogic

    vol = synthetic.image(np.zeros(SHAPE, np.int16))
    volume_node = nodes.volume_node_from_image(vol, "ct")
    mask = synthetic.box(SHAPE, (5, 10, 10), (15, 30, 30)).astype(np.uint8)
    red = segments.add_segmentation(Segmentation(vol.with_array(mask), {1: SegmentInfo(1, "liver", color=(255, 0, 0))}),
                                    "red", volume_node)
    blue = segments.add_segmentation(Segmentation(vol.with_array(mask), {1: SegmentInfo(1, "liver", color=(0, 0, 255))}),
                                     "blue", volume_node)
    review = ReviewLogic(volume_node)
    review.add_segmentation_node(red, "red")
    review.add_segmentation_node(blue, "blue")
    review.show()
    for node in (red, blue):
        node.GetDisplayNode().SetVisibility2DFill(True)
        node.GetDisplayNode().SetOpacity2DFill(1.0)
    images = {}
    for row, model in enumerate(("red", "blue")):
        view = mrml_scene.GetSingletonNode(view_tag(row, "Axial"), "vtkMRMLSliceNode")
        render.fit_slice_to_volume(view, volume_node)
        images[model] = _render_or_skip(render.render_slice_view, view, (200, 200),
                                        app_logic=mrml_scene.organsegbench_app_logic)
    assert _colour_pixels(images["red"], 0) > 500 and _colour_pixels(images["red"], 2) == 0
    assert _colour_pixels(images["blue"], 2) > 500 and _colour_pixels(images["blue"], 0) == 0


def test_error_map_renders_with_its_colour_table(mrml_scene, offscreen, tmp_path) -> None:
    from ErrorDistributionLib.errormap import compute_error_map
    from OrganSegBenchLib import nodes, render, segments

    shape = (40, 40, 40)
    vol = synthetic.image(np.zeros(shape, np.int16))
    volume_node = nodes.volume_node_from_image(vol, "ct")
    ref = segments.add_segmentation(Segmentation(vol.with_array(synthetic.sphere(shape, (20, 20, 20), 10).astype(
        np.uint8)), {1: SegmentInfo(1, "liver")}), "ref", volume_node)
    pred = segments.add_segmentation(Segmentation(vol.with_array(synthetic.sphere(shape, (20, 20, 26), 10).astype(
        np.uint8)), {1: SegmentInfo(1, "liver")}), "pred", volume_node)
    em = compute_error_map(ref, ref.GetSegmentation().GetNthSegmentID(0), pred,
                           pred.GetSegmentation().GetNthSegmentID(0), volume_node)
    view = mrml_scene.AddNewNodeByClass("vtkMRMLViewNode")
    view.SetBoxVisible(False)
    view.SetAxisLabelsVisible(False)
    view.SetBackgroundColor(0, 0, 0)
    view.SetBackgroundColor2(0, 0, 0)
    for node in (ref, pred):
        node.GetDisplayNode().SetVisibility(False)
    rgb = _render_or_skip(render.render_3d_view, view, (300, 300), app_logic=mrml_scene.organsegbench_app_logic)
    # a sphere shifted by 6 mm: one side red (outside the reference), the other blue (inside)
    c = rgb.astype(int)
    reddish = int(((c[..., 0] - c[..., 2]) > 30).sum())
    bluish = int(((c[..., 2] - c[..., 0]) > 30).sum())
    assert reddish > 500 and bluish > 500
    out = render.save_png(rgb, tmp_path / "em.png")
    assert out.stat().st_size > 1000 and em.stats["max_abs_mm"] > 4
