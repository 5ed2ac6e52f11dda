"""MRML logic of the OrganSegBench module: imports slicer (MRML) but never qt/ctk; runs headless on slicer-core."""
