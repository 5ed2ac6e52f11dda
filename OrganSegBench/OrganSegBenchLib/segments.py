"""Model results as segments: one segment per label with its name, colour and SNOMED terminology entry.

Segments carry a terminology entry string in Slicer's format so that Segment Statistics, the terminology
selector and DICOM SEG export understand them::

    <context>~<category scheme^value^meaning>~<type>~<type modifier>~<anatomic context>~<region>~<region modifier>
"""

from __future__ import annotations

import logging

import numpy as np
import slicer
import vtk

from OrganSegBenchLib.nodes import LogFn, image_from_volume_node, volume_node_from_image

logger = logging.getLogger(__name__)

TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
#: SNOMED "Tissue": the terminology Slicer gives every new segment; not a structure identity
GENERIC_TISSUE_CODE = "85756007"


def _code_str(code: dict | None) -> str:
    if not code:
        return "^^"
    return f"{code.get('scheme', '')}^{code.get('value', '')}^{code.get('meaning', '')}"


def terminology_entry(info) -> str | None:
    """Slicer terminology string for a ``SegmentInfo`` with category and type codes (``None`` without codes)."""
    if not getattr(info, "category", None) or not getattr(info, "type", None):
        return None
    return "~".join([TERMINOLOGY_CONTEXT, _code_str(info.category), _code_str(info.type),
                     _code_str(getattr(info, "type_modifier", None)), ANATOMIC_CONTEXT,
                     _code_str(getattr(info, "anatomic_region", None)), "^^"])


def codes_from_terminology(entry: str) -> dict[str, dict[str, str] | None]:
    """Parse a terminology string back into ``{"category", "type", "type_modifier"}`` code dicts."""
    parts = (entry or "").split("~")

    def code(i: int) -> dict[str, str] | None:
        if i >= len(parts):
            return None
        fields = parts[i].split("^")
        if len(fields) < 2 or not fields[1]:
            return None
        return {"scheme": fields[0], "value": fields[1], "meaning": fields[2] if len(fields) > 2 else ""}

    return {"category": code(1), "type": code(2), "type_modifier": code(3)}


def _color_table(segments: dict, scene):
    """A user colour table naming and colouring each label (used by the labelmap import)."""
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", "__organsegbench_colors")
    table.SetTypeToUser()
    table.SetNumberOfColors(int(max(segments, default=0)) + 1)
    table.SetColor(0, "background", 0, 0, 0, 0)
    rng = np.random.default_rng(7)  # deterministic fallback colours for segments without one
    for label, info in segments.items():
        color = np.array(info.color, float) / 255.0 if info.color is not None else rng.uniform(0.2, 1.0, 3)
        table.SetColor(int(label), info.name, *color.tolist(), 1.0)
    return table


def add_segmentation(segmentation, name: str, reference_volume_node=None, segmentation_node=None,
                     log: LogFn | None = None):
    """Add an engine ``Segmentation`` (label map + ``SegmentInfo`` per label) as segments.

    When ``reference_volume_node`` is given and the label map is on another grid, it is resampled onto the volume
    grid (nearest neighbour) and ``log`` says so. Returns the segmentation node (new unless one is given).
    Segment tags record the source label value (``organsegbench.label``).
    """
    from organsegbench.io.geometry import resample_to, same_grid

    log = log or logger.info
    scene = slicer.mrmlScene
    labelmap = segmentation.labelmap
    masks_override = dict(segmentation.overlap_masks)
    if reference_volume_node is not None:
        volume = image_from_volume_node(reference_volume_node)
        if not same_grid(labelmap, volume):
            log(f"segmentation {name!r} is on a different grid than volume {reference_volume_node.GetName()!r} "
                f"({labelmap.geometry_string()} vs {volume.geometry_string()}); resampled to the volume grid "
                "(nearest neighbour)")
            labelmap = resample_to(labelmap, volume, is_label=True)
            masks_override = {k: resample_to(labelmap.with_array(v), volume).array.astype(bool)
                              for k, v in masks_override.items()}
    if segmentation_node is None:
        segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        segmentation_node.CreateDefaultDisplayNodes()
    if reference_volume_node is not None:
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume_node)
    present = {int(v) for v in np.unique(labelmap.array) if v}
    segments = {label: info for label, info in segmentation.segments.items()
                if label in present or label in masks_override}
    missing = sorted(set(segmentation.segments) - set(segments))
    if missing:
        log(f"{name}: {len(missing)} label(s) are empty and were not added: "
            + ", ".join(segmentation.segments[m].name for m in missing[:10]))
    unnamed = sorted(present - set(segmentation.segments))
    if unnamed:
        from organsegbench.io import SegmentInfo

        log(f"{name}: label values without a name were added as label_<value>: {unnamed[:10]}")
        segments.update({v: SegmentInfo(v, f"label_{v}") for v in unnamed})
    before = {segmentation_node.GetSegmentation().GetNthSegmentID(i)
              for i in range(segmentation_node.GetSegmentation().GetNumberOfSegments())}
    _import_labelmap(labelmap, {k: v for k, v in segments.items() if k not in masks_override}, segmentation_node)
    for label, mask in masks_override.items():  # overlapping segments: import their exact masks one by one
        _import_labelmap(labelmap.with_array(mask.astype(np.uint8) * label), {label: segments[label]},
                         segmentation_node)
    seg = segmentation_node.GetSegmentation()
    by_name = {info.name: info for info in segments.values()}
    for i in range(seg.GetNumberOfSegments()):
        sid = seg.GetNthSegmentID(i)
        if sid in before:
            continue
        segment = seg.GetSegment(sid)
        info = by_name.get(segment.GetName())
        if info is None:
            continue
        segment.SetTag("organsegbench.label", str(info.label))
        entry = terminology_entry(info)
        if entry:
            segment.SetTerminology(entry)
    return segmentation_node


def _import_labelmap(labelmap, segments: dict, segmentation_node) -> None:
    if not segments:
        return
    scene = slicer.mrmlScene
    lm_node = volume_node_from_image(labelmap, "__organsegbench_import", labelmap=True)
    table = _color_table(segments, scene)
    try:
        lm_node.GetDisplayNode().SetAndObserveColorNodeID(table.GetID())
        keep = np.isin(slicer.util.arrayFromVolume(lm_node), list(segments))
        if not keep.all():
            arr = slicer.util.arrayFromVolume(lm_node)
            arr[~keep] = 0
            slicer.util.arrayFromVolumeModified(lm_node)
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(lm_node, segmentation_node):
            raise RuntimeError(f"could not import the label map into {segmentation_node.GetName()!r}")
    finally:
        for node in (lm_node.GetDisplayNode(), lm_node, table):
            if node is not None:
                scene.RemoveNode(node)


def segment_infos(segmentation_node) -> list[dict]:
    """Per segment: ``id``, ``name``, ``color`` (0..1), ``codes`` (parsed terminology) and ``label`` tag."""
    seg = segmentation_node.GetSegmentation()
    out = []
    for i in range(seg.GetNumberOfSegments()):
        sid = seg.GetNthSegmentID(i)
        segment = seg.GetSegment(sid)
        value = vtk.reference("")
        label = str(value) if segment.GetTag("organsegbench.label", value) else None
        codes = codes_from_terminology(segment.GetTerminology())
        if codes["type"] and codes["type"]["value"] == GENERIC_TISSUE_CODE:
            codes = {k: None for k in codes}  # Slicer's default "Tissue" entry says nothing about the anatomy
        out.append({"id": sid, "name": segment.GetName(), "color": tuple(segment.GetColor()), "codes": codes,
                    "label": int(label) if label else None})
    return out


def load_segmentation_file(path, reference_volume_node=None, name: str | None = None, log: LogFn | None = None,
                           vocabulary=None):
    """Read a NIfTI/NRRD label map or DICOM SEG with the engine and add it as segments (resampled to the volume
    when on another grid, said in ``log``)."""
    from pathlib import Path

    from organsegbench.io import read_segmentation

    seg = read_segmentation(path, vocabulary=vocabulary)
    stem = Path(path).name.split(".")[0]
    return add_segmentation(seg, name or stem, reference_volume_node=reference_volume_node, log=log)

