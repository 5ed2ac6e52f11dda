"""Surface meshes of label-map structures, signed surface distances, error maps, exports and cohort maps.

Coordinates are LPS millimetres unless a surface says ``coordinate_system == "RAS"``. Sign convention of every
error array: negative = prediction boundary inside the reference, positive = outside.
"""

from organsegbench.surfaces.distance import SurfaceDistance, signed_distance
from organsegbench.surfaces.errormap import ErrorMap, errormap_from_labelmaps, summarise, surface_errors
from organsegbench.surfaces.export import read_surface, render_png, write_surface
from organsegbench.surfaces.mesh import Surface, require_same_space, surface_from_labelmap

__all__ = [
    "ErrorMap", "Surface", "SurfaceDistance", "errormap_from_labelmaps", "read_surface", "render_png",
    "require_same_space", "signed_distance", "summarise", "surface_errors", "surface_from_labelmap",
    "write_surface",
]
