"""Side-by-side review layout: one row of linked slice views (and optionally a 3D view) per model, each
segmentation shown only in its own row (display node ``AddViewNodeID``), all rows showing the same volume.

The view nodes are created here with the singleton tags the layout XML names, so Slicer's layout manager reuses
them in the app, and the logic works headless on slicer-core.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

import numpy as np
import slicer

#: layout id used for the review layout (user layouts start at 100 by convention; this one is fixed)
REVIEW_LAYOUT_ID = 5610
#: orientation -> (view colour name prefix, layout colour)
ORIENTATIONS = {"Axial": ("Red", "#F34A33"), "Sagittal": ("Yellow", "#EDD54C"), "Coronal": ("Green", "#6EB04B")}


def view_tag(row: int, orientation: str) -> str:
    """Singleton tag / layout name of the slice view of model row ``row`` (0-based) and ``orientation``."""
    return f"Review{row + 1}{ORIENTATIONS[orientation][0]}"


def threed_tag(row: int) -> str:
    """Singleton tag of the 3D view of model row ``row``."""
    return f"Review{row + 1}3D"


def review_layout_xml(models: list[str], orientations: tuple[str, ...] = ("Axial", "Sagittal", "Coronal"),
                      with_3d: bool = False) -> str:
    """Layout XML: a vertical stack of rows, one per model, each a horizontal row of views labelled
    ``<row>: <model>``."""
    if not models:
        from organsegbench.errors import OrganSegBenchError

        raise OrganSegBenchError("no segmentations to review", "load at least one segmentation")
    unknown = [o for o in orientations if o not in ORIENTATIONS]
    if unknown:
        raise ValueError(f"unknown orientation(s) {unknown}; use {list(ORIENTATIONS)}")
    rows = []
    for r, model in enumerate(models):
        items = []
        for o in orientations:
            label = quoteattr(f"{r + 1}{o[0]} {model}")
            items.append(
                f'   <item><view class="vtkMRMLSliceNode" singletontag="{view_tag(r, o)}">'
                f'<property name="orientation" action="default">{o}</property>'
                f'<property name="viewlabel" action="default">{label[1:-1]}</property>'
                f'<property name="viewcolor" action="default">{ORIENTATIONS[o][1]}</property>'
                f"</view></item>")
        if with_3d:
            items.append(f'   <item><view class="vtkMRMLViewNode" singletontag="{threed_tag(r)}">'
                         f'<property name="viewlabel" action="default">{r + 1}</property></view></item>')
        rows.append('  <item>\n   <layout type="horizontal">\n' + "\n".join(items) + "\n   </layout>\n  </item>")
    return '<layout type="vertical">\n' + "\n".join(rows) + "\n</layout>"


def _singleton(scene, cls: str, tag: str):
    node = scene.GetSingletonNode(tag, cls)
    if node is None:
        node = scene.CreateNodeByClass(cls)
        node.SetSingletonTag(tag)
        node.SetName(tag)
        if hasattr(node, "SetLayoutName"):
            node.SetLayoutName(tag)
        node = scene.AddNode(node)
    return node


def ensure_view_nodes(models: list[str], orientations: tuple[str, ...] = ("Axial", "Sagittal", "Coronal"),
                      with_3d: bool = False, scene=None) -> dict[str, list]:
    """Create (or find) the view nodes of every row; returns ``{model: [view nodes]}``."""
    scene = scene or slicer.mrmlScene
    out: dict[str, list] = {}
    for r, model in enumerate(models):
        views = []
        for o in orientations:
            node = _singleton(scene, "vtkMRMLSliceNode", view_tag(r, o))
            node.SetOrientation(o)
            node.SetLayoutLabel(f"{r + 1}{o[0]}")
            views.append(node)
        if with_3d:
            views.append(_singleton(scene, "vtkMRMLViewNode", threed_tag(r)))
        out[model] = views
    return out


def _composite_node(scene, slice_node):
    """The slice composite node of a slice view (found by layout name; created headless)."""
    layout = slice_node.GetLayoutName()
    nodes = scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
    for i in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(i)
        if node.GetLayoutName() == layout:
            return node
    node = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    node.SetLayoutName(layout)
    return node


def apply_review_layout(segmentations: dict[str, object], volume_node=None, layout_node=None,
                        orientations: tuple[str, ...] = ("Axial", "Sagittal", "Coronal"), with_3d: bool = False,
                        outline: bool = True) -> dict[str, list]:
    """Register and switch to the review layout; show each segmentation only in its row; set the volume as
    background of every view; link the views. Returns ``{model: [view nodes]}``.

    ``layout_node``: the scene's ``vtkMRMLLayoutNode`` (found or created when omitted).
    """
    scene = slicer.mrmlScene
    models = list(segmentations)
    xml = review_layout_xml(models, orientations, with_3d)
    if layout_node is None:
        layout_node = scene.GetSingletonNode("vtkMRMLLayoutNode", "vtkMRMLLayoutNode") or _singleton(
            scene, "vtkMRMLLayoutNode", "vtkMRMLLayoutNode")
    if layout_node.IsLayoutDescription(REVIEW_LAYOUT_ID):
        layout_node.SetLayoutDescription(REVIEW_LAYOUT_ID, xml)
    else:
        layout_node.AddLayoutDescription(REVIEW_LAYOUT_ID, xml)
    views = ensure_view_nodes(models, orientations, with_3d)
    for model, seg_node in segmentations.items():
        seg_node.CreateDefaultDisplayNodes()
        display = seg_node.GetDisplayNode()
        display.RemoveAllViewNodeIDs()
        for view in views[model]:
            display.AddViewNodeID(view.GetID())
        display.SetVisibility2DFill(not outline)
        display.SetVisibility2DOutline(True)
    for model_views in views.values():
        for view in model_views:
            if view.IsA("vtkMRMLSliceNode"):
                comp = _composite_node(scene, view)
                comp.SetLinkedControl(True)
                if volume_node is not None:
                    comp.SetBackgroundVolumeID(volume_node.GetID())
    layout_node.SetViewArrangement(REVIEW_LAYOUT_ID)
    return views


def segment_centre_ras(segmentation_node, segment_id: str) -> np.ndarray | None:
    """Centre (RAS, mm) of a segment's extent; ``None`` for an empty segment."""
    centre = segmentation_node.GetSegmentCenterRAS(segment_id)
    if centre is None:
        return None
    centre = np.asarray(centre, dtype=float)
    return None if not np.all(np.isfinite(centre)) else centre


def centre_views(views: dict[str, list], point_ras) -> None:
    """Centre every slice view of every row on ``point_ras`` (mm), keeping each view's orientation."""
    x, y, z = (float(v) for v in point_ras)
    for model_views in views.values():
        for view in model_views:
            if view.IsA("vtkMRMLSliceNode"):
                view.JumpSliceByCentering(x, y, z)
