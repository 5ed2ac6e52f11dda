"""MRML logic of the Error Distribution module: imports slicer (MRML) but never qt/ctk; runs headless on slicer-core."""
