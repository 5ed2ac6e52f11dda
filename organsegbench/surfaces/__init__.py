"""Surface meshes of label-map structures, signed surface distances, error maps, exports and cohort maps.

Coordinates are LPS millimetres unless a surface says ``coordinate_system == "RAS"``. Sign convention of every
error array: negative = prediction boundary inside the reference, positive = outside.
"""

from organsegbench.surfaces.cohort import CohortCase, CohortErrorMap, align, cohort_error_map, icp
from organsegbench.surfaces.distance import SurfaceDistance, signed_distance
from organsegbench.surfaces.errormap import ErrorMap, errormap_from_labelmaps, summarise, surface_errors
from organsegbench.surfaces.export import read_surface, render_png, write_surface
from organsegbench.surfaces.mesh import Surface, require_same_space, surface_from_labelmap
from organsegbench.surfaces.report import write_cohort_errormap, write_errormap

__all__ = [
    "CohortCase", "CohortErrorMap", "ErrorMap", "Surface", "SurfaceDistance", "align", "cohort_error_map",
    "errormap_from_labelmaps", "icp", "read_surface", "render_png", "require_same_space", "signed_distance",
    "summarise", "surface_errors", "surface_from_labelmap", "write_cohort_errormap", "write_errormap",
    "write_surface",
]
