"""Analytic tests of surface extraction and signed surface distances (organsegbench.surfaces)."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic

from organsegbench.errors import EmptyMaskError, GeometryMismatchError
from organsegbench.io.image import Image
from organsegbench.surfaces import (
    SurfaceDistance,
    errormap_from_labelmaps,
    surface_errors,
    surface_from_labelmap,
)

# Discretisation of voxel surfaces (vtkDiscreteFlyingEdges3D puts vertices half-way between an inside and an
# outside voxel centre): for spheres, every vertex-to-surface distance lies within 1 voxel of the radius
# difference and the mean within 0.3 voxel (measured: 0.84/0.15 voxel at 1 mm, 0.93/0.24 voxel at 0.5 mm).
MAX_DEV_VOXELS = 1.0
MEAN_DEV_VOXELS = 0.3


def _ball(spacing: float, radius: float, centre=(30.0, 30.0, 30.0), size_mm: float = 60.0,
          spacing_xyz=None) -> Image:
    sp = (spacing,) * 3 if spacing_xyz is None else spacing_xyz
    shape = tuple(int(size_mm / s) for s in sp[::-1])
    arr = synthetic.sphere(shape, centre, radius, tuple(sp[::-1])).astype(np.uint8)
    return synthetic.image(arr, sp)


@pytest.mark.parametrize("spacing", [1.0, 0.5])
def test_concentric_spheres_give_the_radius_difference(spacing):
    ref, pred = _ball(spacing, 10.0), _ball(spacing, 14.0)
    em = errormap_from_labelmaps(ref, pred, structure="liver", case="spheres")
    for values in (em.pred_to_ref, em.ref_to_pred):
        assert np.all(values > 0)  # larger prediction: over-segmentation everywhere, in both directions
        assert np.abs(values - 4.0).max() <= MAX_DEV_VOXELS * spacing
        assert abs(values.mean() - 4.0) <= MEAN_DEV_VOXELS * spacing
    assert em.summary["symmetric"]["fraction_outside"] == 1.0


def test_smaller_prediction_is_negative_in_both_directions():
    em = errormap_from_labelmaps(_ball(1.0, 14.0), _ball(1.0, 10.0))
    assert np.all(em.pred_to_ref < 0) and np.all(em.ref_to_pred < 0)
    assert abs(em.pred_to_ref.mean() + 4.0) <= MEAN_DEV_VOXELS


def test_shifted_sphere_gives_the_cosine_pattern():
    """A sphere shifted by s along +x: the signed distance at a vertex with outward direction n is ≈ s·n_x."""
    shift = 3.0
    ref = _ball(0.5, 12.0)
    pred = _ball(0.5, 12.0, centre=(30.0, 30.0, 30.0 + shift))  # centre is (z, y, x): shift along x
    em = errormap_from_labelmaps(ref, pred)
    centre_pred = np.array([30.0 + shift, 30.0, 30.0])  # LPS (x, y, z); identity direction, origin 0
    n = em.prediction.points - centre_pred
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    # exact for two spheres: |c_pred + R n - c_ref| - R
    expected = np.linalg.norm(centre_pred + 12.0 * n - np.array([30.0, 30.0, 30.0]), axis=1) - 12.0
    assert np.abs(em.pred_to_ref - expected).max() <= MAX_DEV_VOXELS * 0.5
    assert np.corrcoef(em.pred_to_ref, expected)[0, 1] > 0.98
    left = n[:, 0] > 0.9  # +x side (patient left in LPS): prediction sticks out
    right = n[:, 0] < -0.9
    assert np.all(em.pred_to_ref[left] > 2.0) and np.all(em.pred_to_ref[right] < -2.0)
    assert em.pred_to_ref[left].mean() == pytest.approx(expected[left].mean(), abs=0.25)
    assert em.pred_to_ref[right].mean() == pytest.approx(expected[right].mean(), abs=0.25)


def test_exact_method_matches_vtk_exact_distance(rng):
    from vtkmodules.vtkFiltersCore import vtkImplicitPolyDataDistance

    surf = surface_from_labelmap(_ball(1.0, 10.0))
    f = vtkImplicitPolyDataDistance()
    f.SetInput(surf.to_polydata())
    q = rng.uniform(15.0, 45.0, size=(1500, 3))
    vtk_d = np.array([f.EvaluateFunction(*p) for p in q])
    ours = SurfaceDistance(surf).signed_distance(q)
    np.testing.assert_allclose(np.abs(ours), np.abs(vtk_d), atol=1e-6)
    inside = np.linalg.norm(q - 30.0, axis=1) < 9.0
    outside = np.linalg.norm(q - 30.0, axis=1) > 11.0
    assert np.all(ours[inside] < 0) and np.all(ours[outside] > 0)


def test_vertex_method_is_close_to_exact(rng):
    surf = surface_from_labelmap(_ball(1.0, 10.0))
    q = rng.uniform(15.0, 45.0, size=(1000, 3))
    sd = SurfaceDistance(surf)
    exact, approx = sd.signed_distance(q), sd.signed_distance(q, method="vertex")
    assert np.all(np.abs(approx) >= np.abs(exact) - 1e-9)  # nearest vertex can only be farther
    assert np.abs(approx - exact)[np.abs(exact) > 1.0].max() < 0.5


def test_anisotropic_grid_and_direction_are_honoured():
    """A ball on a 0.7 x 0.8 x 2.5 mm grid with a flipped axis is still the same ball in LPS mm."""
    sp = (0.7, 0.8, 2.5)
    img = _ball(1.0, 10.0, spacing_xyz=sp)
    surf = surface_from_labelmap(img)
    assert surf.volume_ml() == pytest.approx(4 / 3 * np.pi * 1000 / 1000, rel=0.08)
    flipped = Image(img.array[:, :, ::-1].copy(), spacing=sp, origin=((img.size[0] - 1) * sp[0], 0, 0),
                    direction=np.diag([-1.0, 1.0, 1.0]))
    surf2 = surface_from_labelmap(flipped)
    assert surf2.volume_ml() == pytest.approx(surf.volume_ml(), rel=1e-9)  # outward orientation kept
    np.testing.assert_allclose(surf2.points.mean(axis=0), surf.points.mean(axis=0), atol=1e-6)


def test_ras_conversion_flips_x_and_y_only():
    surf = surface_from_labelmap(_ball(1.0, 8.0, centre=(30.0, 20.0, 10.0)))
    ras = surf.to_ras()
    assert ras.coordinate_system == "RAS"
    np.testing.assert_allclose(ras.points, surf.points * [-1, -1, 1])
    assert ras.volume_ml() == pytest.approx(surf.volume_ml())
    np.testing.assert_allclose(ras.to_lps().points, surf.points)


def test_smoothing_and_decimation_are_recorded():
    surf = surface_from_labelmap(_ball(1.0, 10.0), structure="spleen", smoothing_iterations=15, decimation=0.5)
    assert surf.metadata["smoothing"]["iterations"] == 15
    assert surf.metadata["decimation"]["target_reduction"] == 0.5
    raw = surface_from_labelmap(_ball(1.0, 10.0))
    assert surf.n_faces < 0.6 * raw.n_faces
    assert raw.metadata["smoothing"] is None and raw.metadata["decimation"] is None


@pytest.mark.parametrize("which", ["reference", "prediction"])
def test_empty_structure_raises_and_builds_no_mesh(which):
    full, empty = _ball(1.0, 8.0), Image(np.zeros((60, 60, 60), dtype=np.uint8))
    ref, pred = (empty, full) if which == "reference" else (full, empty)
    with pytest.raises(EmptyMaskError, match=which):
        errormap_from_labelmaps(ref, pred, structure="liver", case="c1")


def test_missing_label_value_is_an_empty_mask():
    with pytest.raises(EmptyMaskError, match="label 7"):
        surface_from_labelmap(_ball(1.0, 8.0), label=7)


def test_surfaces_from_disjoint_physical_spaces_are_refused():
    a = _ball(1.0, 8.0)
    b = Image(a.array.copy(), origin=(500.0, 0.0, 0.0))
    with pytest.raises(GeometryMismatchError, match="do not overlap"):
        errormap_from_labelmaps(a, b)
    sa, sb = surface_from_labelmap(a), surface_from_labelmap(a).to_ras()
    with pytest.raises(GeometryMismatchError, match="RAS"):
        surface_errors(sa, sb)


def test_histograms_share_symmetric_bins():
    em = errormap_from_labelmaps(_ball(1.0, 10.0), _ball(1.0, 12.0, centre=(30.0, 30.0, 31.0)))
    h = em.histograms(bin_width_mm=0.5)
    counts, edges = h["pred_to_ref"]
    assert counts.sum() == em.prediction.n_points
    assert edges[0] == -edges[-1] and np.allclose(np.diff(edges), 0.5)
    np.testing.assert_array_equal(edges, h["ref_to_pred"][1])


@pytest.mark.parametrize("k", [1, 3])
def test_numba_and_numpy_engines_agree(rng, k):
    pytest.importorskip("numba")
    surf = surface_from_labelmap(_ball(1.0, 10.0, centre=(30.0, 29.0, 31.0)))
    q = rng.uniform(12.0, 48.0, size=(3000, 3))
    sd = SurfaceDistance(surf)
    a = sd.signed_distance(q, engine="numba", k=k)
    assert sd.last_engine == "numba"
    b = sd.signed_distance(q, engine="numpy", k=k)
    assert sd.last_engine == "numpy"
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_compiled_normals_and_adjacency_match_numpy():
    pytest.importorskip("numba")
    from organsegbench.surfaces import _kernels
    from organsegbench.surfaces.distance import face_normals, vertex_pseudo_normals

    surf = surface_from_labelmap(_ball(1.0, 9.0), smoothing_iterations=5)
    fn = _kernels.face_normals(surf.points, surf.faces)
    vn = _kernels.vertex_normals(surf.points, surf.faces, _kernels.vertex_face_table(surf.faces, surf.n_points), fn)
    np.testing.assert_allclose(fn, face_normals(surf.points, surf.faces), atol=1e-12)
    np.testing.assert_allclose(vn, vertex_pseudo_normals(surf.points, surf.faces), atol=1e-12)
    table = _kernels.vertex_face_table(surf.faces, surf.n_points)
    sd = SurfaceDistance(surf)  # small mesh: the numpy table
    np.testing.assert_array_equal(np.sort(table, axis=1), np.sort(sd.vertex_faces, axis=1))


def test_decimated_meshes_still_get_exact_distances():
    from vtkmodules.vtkFiltersCore import vtkImplicitPolyDataDistance

    em = errormap_from_labelmaps(_ball(1.0, 10.0), _ball(1.0, 12.0, centre=(30.0, 30.0, 31.5)),
                                 smoothing_iterations=15, decimation=0.5)
    assert em.metadata["candidate_vertices_k"] == 3  # the walk copes with irregular triangles (k = 8 without it)
    f = vtkImplicitPolyDataDistance()
    f.SetInput(em.reference.to_polydata())
    vtk_d = np.array([f.EvaluateFunction(*p) for p in em.prediction.points])
    np.testing.assert_allclose(em.pred_to_ref, vtk_d, atol=1e-6)


@pytest.mark.parametrize("k", [1, 3])
def test_grid_nearest_vertices_equal_the_kd_tree(rng, k):
    """The compiled engine's uniform grid is exact: same distances as scipy's KD-tree, ties to the smaller index,
    and points far off the surface (beyond the grid walk) handed to the KD-tree."""
    pytest.importorskip("numba")
    surf = surface_from_labelmap(_ball(1.0, 10.0, centre=(30.0, 29.0, 31.0)))
    lattice = np.round(rng.uniform(15.0, 45.0, size=(500, 3)) * 2) / 2  # half-voxel lattice: many exact ties
    far = rng.uniform(-300.0, 300.0, size=(200, 3))
    q = np.concatenate([rng.uniform(10.0, 50.0, size=(2000, 3)), lattice, far])
    sd = SurfaceDistance(surf)
    d_grid, i_grid = sd.nearest_vertices(q, k, engine="numba")
    d_tree, _ = sd.nearest_vertices(q, k, engine="numpy")
    np.testing.assert_array_equal(d_grid, d_tree)
    d2_grid, i_raw = sd.grid.query(q, k)
    assert (i_raw[:, 0] < 0).sum() > 0  # some far points really took the KD-tree route
    near = i_raw[:, 0] >= 0
    all_d2 = ((q[near, None, :] - surf.points[None, :, :]) ** 2).sum(axis=2)
    for row, d2, idx in zip(all_d2, d2_grid[near], i_raw[near], strict=True):
        ranked = np.lexsort((np.arange(len(row)), row))[:k]  # brute force, ties to the smaller index
        np.testing.assert_array_equal(idx, ranked)
        np.testing.assert_array_equal(d2, row[ranked])


@pytest.mark.parametrize("kind", ["decimated", "open_walls"])
def test_engines_agree_on_irregular_and_open_meshes(rng, kind):
    """Smoothed + decimated triangles and the open wall meshes of 2D masks take the same path in both engines."""
    pytest.importorskip("numba")
    from organsegbench.surfaces.mesh import walls_only

    if kind == "decimated":
        surf = surface_from_labelmap(_ball(1.0, 10.0), smoothing_iterations=15, decimation=0.5)
    else:
        img = _ball(1.0, 10.0)
        flat = Image(np.repeat(img.array[30:31], 3, axis=0), spacing=img.spacing)
        surf = walls_only(surface_from_labelmap(flat), np.array([0.0, 0.0, 1.0]))
    q = rng.uniform(12.0, 48.0, size=(2000, 3))
    sd = SurfaceDistance(surf)
    for k in (1, 3):
        np.testing.assert_allclose(sd.signed_distance(q, engine="numba", k=k),
                                   sd.signed_distance(q, engine="numpy", k=k), atol=1e-9)
    np.testing.assert_allclose(sd.signed_distance(q, method="vertex", engine="numba"),
                               sd.signed_distance(q, method="vertex", engine="numpy"), atol=1e-9)


def test_non_finite_query_points_are_refused_by_index():
    sd = SurfaceDistance(surface_from_labelmap(_ball(1.0, 8.0)))
    q = np.array([[30.0, 30.0, 30.0], [np.nan, 1.0, 2.0]])
    for engine in ("numpy", "numba"):
        with pytest.raises(ValueError, match="query point 1 is not finite"):
            sd.nearest_vertices(q, engine=engine)
