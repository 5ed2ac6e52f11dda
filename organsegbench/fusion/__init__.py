"""Training-free fusion of several models' segmentations (mean, majority vote, STAPLE, multi-label STAPLE).

New strategies plug in with :func:`register_method`; :func:`fuse` prepares the inputs (one grid, harmonised
vocabularies) and reports per-model estimates.
"""

from organsegbench.fusion import strategies as _strategies  # noqa: F401  (registers the built-in methods)
from organsegbench.fusion.base import FUSION_METHODS, FusionResult, describe_methods, fuse, register_method

__all__ = ["FUSION_METHODS", "FusionResult", "describe_methods", "fuse", "register_method"]
