"""OrganSegBench engine: run, benchmark and review organ segmentations from foundation models.

The engine depends on numpy, SimpleITK and friends only; torch, model packages and Slicer are optional and are
imported lazily by the code that needs them. It never imports ``slicer``, ``qt`` or ``ctk``.
"""

from organsegbench.errors import OrganSegBenchError

__version__ = "0.1.0"

__all__ = ["OrganSegBenchError", "__version__"]
