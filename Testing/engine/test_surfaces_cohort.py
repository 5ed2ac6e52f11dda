"""ICP alignment and cohort error distributions on a template (organsegbench.surfaces.cohort)."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic

from organsegbench.errors import ConfigError, UnknownNameError
from organsegbench.surfaces import errormap_from_labelmaps, surface_from_labelmap
from organsegbench.surfaces.cohort import CohortCase, align, cohort_error_map


def _rotation(axis, degrees):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _organ(shift_x: float = 0.0, radius_scale: float = 1.0) -> np.ndarray:
    """An asymmetric 'organ': ellipsoid with a lobe at one end (no symmetry for ICP to confuse)."""
    shape = (50, 60, 70)
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    body = ((xx - 35 - shift_x) / (22 * radius_scale)) ** 2 + ((yy - 30) / 13) ** 2 + ((zz - 25) / 9) ** 2 <= 1
    lobe = synthetic.sphere(shape, (30.0, 38.0, 50.0 + shift_x), 7.0)
    return (body | lobe).astype(np.uint8)


def test_icp_recovers_a_known_rigid_transform():
    fixed = surface_from_labelmap(synthetic.image(_organ()))
    t = np.eye(4)
    t[:3, :3] = _rotation((1.0, 2.0, 3.0), 25.0)
    t[:3, 3] = (6.0, -4.0, 3.0)
    moving = fixed.transformed(t)
    al = align(moving, fixed, mode="rigid", seed=1)
    expected = np.linalg.inv(t)
    r_err = al.matrix[:3, :3] @ expected[:3, :3].T
    angle = np.degrees(np.arccos(np.clip((np.trace(r_err) - 1) / 2, -1, 1)))
    assert angle < 0.5
    np.testing.assert_allclose(al.matrix[:3, 3], expected[:3, 3], atol=0.3)
    assert al.mean_distance_mm < 0.05


def test_similarity_icp_recovers_scale():
    fixed = surface_from_labelmap(synthetic.image(_organ()))
    t = np.eye(4)
    t[:3, :3] = 1.2 * _rotation((0.0, 0.0, 1.0), 15.0)
    t[:3, 3] = (2.0, 1.0, -3.0)
    al = align(fixed.transformed(t), fixed, mode="similarity", seed=0)
    assert np.cbrt(np.linalg.det(al.matrix[:3, :3])) == pytest.approx(1 / 1.2, rel=0.01)


def _cases(n: int) -> list[CohortCase]:
    out = []
    for i in range(n):
        ref = synthetic.image(_organ(shift_x=2.0 * i))
        pred = synthetic.image(_organ(shift_x=2.0 * i, radius_scale=1.1))  # longer: over-segmented along x ends
        em = errormap_from_labelmaps(ref, pred, case=f"c{i}")
        out.append(CohortCase(f"c{i}", em.reference))
    return out


def test_cohort_map_aggregates_on_the_template_and_is_deterministic():
    cases = _cases(3)
    a = cohort_error_map(cases, seed=3)
    b = cohort_error_map(cases, seed=3)
    tmpl = a.template
    assert a.template_case == "c0" and tmpl.n_points == cases[0].reference.n_points
    for name in ("mean_signed_mm", "median_signed_mm", "p5_signed_mm", "p95_signed_mm", "mean_abs_mm",
                 "p95_abs_mm"):
        np.testing.assert_array_equal(tmpl.point_data[name], b.template.point_data[name])
    assert np.all(tmpl.point_data["p5_signed_mm"] <= tmpl.point_data["median_signed_mm"] + 1e-12)
    assert np.all(tmpl.point_data["median_signed_mm"] <= tmpl.point_data["p95_signed_mm"] + 1e-12)
    # identical shapes shifted: the aligned subjects coincide with the template, so the cohort mean equals the
    # template case's own map up to discretisation
    own = cases[0].reference.point_data["signed_distance_mm"]
    assert np.abs(tmpl.point_data["mean_signed_mm"] - own).mean() < 0.2
    tips = np.abs(tmpl.points[:, 0] - tmpl.points[:, 0].mean()) > 20  # over-segmented ends of the long axis
    assert tmpl.point_data["mean_signed_mm"][tips].mean() > 1.0
    for name, al in a.alignments.items():
        assert al.mean_distance_mm < 0.3, name


def test_cohort_template_choice_and_bad_inputs():
    cases = _cases(2)
    assert cohort_error_map(cases, template="c1").template_case == "c1"
    with pytest.raises(UnknownNameError, match="c9"):
        cohort_error_map(cases, template="c9")
    with pytest.raises(ConfigError, match="at least 2 subjects"):
        cohort_error_map(cases[:1])
    with pytest.raises(ConfigError, match="duplicate"):
        cohort_error_map([cases[0], cases[0]])
