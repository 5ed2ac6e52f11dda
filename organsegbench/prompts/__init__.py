"""Prompts for promptable models: per-slice boxes and points, 3D boxes, text, prompt files, and prompts
derived from reference masks under a recorded protocol (see :mod:`organsegbench.prompts.from_mask`)."""

from organsegbench.prompts.from_mask import PromptProtocol, binarise, prompts_from_mask
from organsegbench.prompts.types import (
    Box2D,
    Box3D,
    Point2D,
    PromptSet,
    box_is_clipped,
    clip_box,
    parse_box_arg,
)

__all__ = [
    "Box2D", "Box3D", "Point2D", "PromptSet", "PromptProtocol", "binarise", "box_is_clipped", "clip_box",
    "parse_box_arg", "prompts_from_mask",
]
