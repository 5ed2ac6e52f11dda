"""Surface export (VTP, PLY, STL) and PNG renderings of error maps."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic

from organsegbench.surfaces import errormap_from_labelmaps, read_surface, render_png, write_surface
from organsegbench.surfaces.export import vtk_offscreen_available


@pytest.fixture(scope="module")
def shifted():
    shape = (50, 50, 50)
    ref = synthetic.image(synthetic.sphere(shape, (25.0, 25.0, 25.0), 10.0).astype(np.uint8))
    pred = synthetic.image(synthetic.sphere(shape, (25.0, 25.0, 28.0), 10.0).astype(np.uint8))
    return errormap_from_labelmaps(ref, pred, structure="liver", case="c1")


def test_vtp_round_trip_keeps_every_array(shifted, tmp_path):
    path = write_surface(shifted.prediction, tmp_path / "p.vtp")
    back = read_surface(path)
    np.testing.assert_allclose(back.points, shifted.prediction.points)
    np.testing.assert_array_equal(back.faces, shifted.prediction.faces)
    np.testing.assert_allclose(back.point_data["signed_distance_mm"], shifted.pred_to_ref)


def test_ply_holds_values_and_colours(shifted, tmp_path):
    path = write_surface(shifted.prediction, tmp_path / "p.ply")
    raw = path.read_bytes()
    head, body = raw.split(b"end_header\n", 1)
    header = head.decode()
    assert "property float signed_distance_mm" in header and "property uchar red" in header
    assert f"element vertex {shifted.prediction.n_points}" in header
    dtype = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("signed_distance_mm", "<f4"), ("abs_distance_mm", "<f4"),
             ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vert = np.frombuffer(body, dtype=dtype, count=shifted.prediction.n_points)
    np.testing.assert_allclose(vert["signed_distance_mm"], shifted.pred_to_ref, atol=1e-5)
    most = np.argmax(shifted.pred_to_ref)
    assert vert["red"][most] > vert["blue"][most]  # outside (positive) is red


def test_stl_has_the_geometry(shifted, tmp_path):
    back = read_surface(write_surface(shifted.reference, tmp_path / "r.stl"))
    assert back.n_faces == shifted.reference.n_faces
    with pytest.raises(ValueError, match="unsupported"):
        write_surface(shifted.reference, tmp_path / "r.obj")


def _colour_fractions(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)[..., :3]
    red = (img[..., 0] > 0.6) & (img[..., 2] < 0.4)
    blue = (img[..., 2] > 0.5) & (img[..., 0] < 0.4)
    return red.mean(), blue.mean()


@pytest.mark.parametrize("backend", ["vtk", "matplotlib"])
def test_rendering_shows_both_signs_and_a_colour_bar(shifted, tmp_path, backend):
    if backend == "vtk" and not vtk_offscreen_available():
        pytest.skip("no offscreen VTK window on this machine")
    path = tmp_path / f"{backend}.png"
    used = render_png(shifted.prediction, path, title="liver — case c1", backend=backend)
    assert used == backend
    red, blue = _colour_fractions(path)
    assert red > 0.005 and blue > 0.005  # shifted sphere: one side outside (red), the other inside (blue)


def test_single_slice_maps_are_drawn_as_contours(tmp_path):
    a = np.zeros((1, 40, 40), np.uint8)
    a[0, 10:30, 10:30] = 1
    b = np.zeros_like(a)
    b[0, 12:34, 10:30] = 1
    em = errormap_from_labelmaps(synthetic.image(a), synthetic.image(b))
    assert render_png(em.prediction, tmp_path / "p.png", title="slice") == "matplotlib-2d"
    red, blue = _colour_fractions(tmp_path / "p.png")
    assert red > 0 and blue > 0
