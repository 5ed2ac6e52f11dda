"""MRML logic of the Segmentation Review module: imports slicer (MRML) but never qt/ctk; runs headless on slicer-core."""
