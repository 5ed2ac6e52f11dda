"""3D Slicer ``.seg.nrrd`` segment metadata: header keys ``SegmentN_Name``, ``SegmentN_LabelValue``,
``SegmentN_Layer``, ``SegmentN_Color`` (RGB 0..1) and the terminology, either in ``SegmentN_Terminology`` or (as
Slicer itself writes it) in ``SegmentN_Tags`` as ``TerminologyEntry:<terminology>|``.

The terminology string is Slicer's ``context~category~type~typeModifier~anatomicContext~region~regionModifier``
with each code written ``scheme^value^meaning``. Files with several layers (overlapping segments, stored as a 4D
NRRD whose first axis is the layer) are read into exact per-segment masks and written that way.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from organsegbench.errors import InputFileError
from organsegbench.io.image import Image
from organsegbench.io.segment_info import SegmentInfo, name_segments
from organsegbench.io.segmentation import Segmentation

log = logging.getLogger(__name__)
_KEY = re.compile(r"^Segment(\d+)_(\w+)$")
TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMY_CONTEXT = "Anatomic codes - DICOM master list"


def parse_terminology(text: str) -> dict[str, dict[str, str] | None]:
    """Parse Slicer's terminology string into ``category``, ``type``, ``type_modifier`` and ``anatomic_region``."""
    parts = text.split("~")
    codes = []
    for part in parts:
        if "^" not in part:
            codes.append(None)
            continue
        fields = part.split("^")
        scheme, value = fields[0], fields[1] if len(fields) > 1 else ""
        meaning = "^".join(fields[2:]) if len(fields) > 2 else ""
        codes.append({"value": value, "scheme": scheme, "meaning": meaning} if value else None)
    # positions: 0 context, 1 category, 2 type, 3 modifier, 4 anatomic context, 5 region, 6 region modifier
    def at(i: int) -> dict[str, str] | None:
        return codes[i] if i < len(codes) else None
    return {"category": at(1), "type": at(2), "type_modifier": at(3), "anatomic_region": at(5)}


def format_terminology(info: SegmentInfo) -> str:
    """Slicer terminology string for ``info`` (empty codes written ``^^``)."""
    def c(code: dict[str, str] | None) -> str:
        return f"{code['scheme']}^{code['value']}^{code['meaning']}" if code else "^^"
    return "~".join([TERMINOLOGY_CONTEXT, c(info.category), c(info.type), c(info.type_modifier), ANATOMY_CONTEXT,
                     c(info.anatomic_region), "^^"])


def _tag(tags: str, key: str) -> str:
    """Value of ``key`` in Slicer's ``SegmentN_Tags`` string (``key1:value1|key2:value2|``)."""
    for item in tags.split("|"):
        k, _, v = item.partition(":")
        if k == key:
            return v
    return ""


def _segment_headers(header: dict[str, str]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for key, value in header.items():
        m = _KEY.match(key)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return out


def read_slicer_nrrd(path: str | Path, vocabulary: Any = None) -> Segmentation | None:
    """Read a Slicer segmentation NRRD; None when the file has no ``SegmentN_*`` keys (a plain label map)."""
    p = Path(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputFileError(f"cannot read NRRD file {str(p)!r}: {str(exc).strip().splitlines()[-1]}",
                             "check that the file is complete") from exc
    header = {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}
    seg_headers = _segment_headers(header)
    if not seg_headers:
        return None
    try:
        s = reader.Execute()
    except RuntimeError as exc:
        raise InputFileError(f"cannot read NRRD file {str(p)!r}: {str(exc).strip().splitlines()[-1]}",
                             "check that the file is complete") from exc
    if s.GetNumberOfComponentsPerPixel() > 1:  # layers: the NRRD "list" axis is read as vector components
        layers = [sitk.VectorIndexSelectionCast(s, i) for i in range(s.GetNumberOfComponentsPerPixel())]
    else:
        layers = [s]
    grid = Image.from_sitk(layers[0], source=str(p), format="nrrd")
    arrays = [sitk.GetArrayViewFromImage(layer) for layer in layers]
    multi = len(layers) > 1
    masks: dict[int, np.ndarray] = {}
    known: dict[int, SegmentInfo] = {}
    values = [int(seg_headers[n].get("LabelValue", 1 if multi else n + 1)) for n in sorted(seg_headers)]
    unique_values = len(set(values)) == len(values) and 0 not in values  # else layers reuse values: number them
    for i, n in enumerate(sorted(seg_headers)):
        h = seg_headers[n]
        layer = int(h.get("Layer", n if multi else 0))
        value = values[i]
        if layer >= len(arrays):
            raise InputFileError(f"{str(p)!r}: Segment{n} is on layer {layer} but the file has {len(arrays)}",
                                 "re-save the segmentation from Slicer")
        label = value if (unique_values or not multi) else n + 1
        info = SegmentInfo(label=label, name=h.get("Name", f"label_{label}"))
        terminology = h.get("Terminology") or _tag(h.get("Tags", ""), "TerminologyEntry")
        if terminology:
            for k, v in parse_terminology(terminology).items():
                setattr(info, k, v)
        if "Color" in h:
            try:
                rgb = [float(c) for c in h["Color"].split()[:3]]
                info.color = tuple(int(round(255 * c)) for c in rgb)  # type: ignore[assignment]
            except ValueError:
                log.warning("%s: cannot parse Segment%d_Color %r", p, n, h["Color"])
        info.metadata.update({"slicer_id": h.get("ID", ""), "slicer_layer": layer, "slicer_label_value": value})
        known[label] = info
        masks[label] = np.asarray(arrays[layer] == value)
    if not multi:
        arr = np.asarray(arrays[0])
        extra = sorted(int(v) for v in np.unique(arr) if v != 0 and int(v) not in known)
        for v in extra:  # voxels whose value has no SegmentN entry are kept, never dropped
            masks[v] = arr == v
    segments = name_segments(sorted(masks), vocabulary, known=known)
    return Segmentation.from_masks(grid, masks, segments, metadata={"source": str(p), "format": "seg.nrrd"})


def _layers(seg: Segmentation) -> tuple[list[np.ndarray], dict[int, int]]:
    """Label maps holding every segment exactly: one when nothing overlaps, else greedy layers (label -> layer)."""
    if not seg.overlapping:
        return [seg.labelmap.array], {label: 0 for label in seg.segments}
    layers: list[np.ndarray] = []
    where: dict[int, int] = {}
    for label in sorted(seg.segments):
        mask = seg.segment_mask(label)
        target = next((i for i, layer in enumerate(layers) if not np.any(layer[mask])), None)
        if target is None:
            layers.append(np.zeros(mask.shape, dtype=seg.labelmap.array.dtype))
            target = len(layers) - 1
        layers[target][mask] = label
        where[label] = target
    return layers, where


def write_slicer_nrrd(seg: Segmentation, path: str | Path) -> Path:
    """Write a Slicer ``.seg.nrrd`` (segment names, colours, terminology in the header).

    Overlapping segments go to several layers (a vector NRRD, which Slicer reads as segmentation layers), so
    every segment is kept exactly.
    """
    from organsegbench.io.volumes import write_image

    p = Path(path)
    layers, where = _layers(seg)
    header: dict[str, str] = {}
    for n, label in enumerate(sorted(seg.segments)):
        info = seg.segments[label]
        mask = layers[where[label]] == label
        if mask.any():
            idx = np.nonzero(mask)
            extent = " ".join(f"{int(idx[a].min())} {int(idx[a].max())}" for a in (2, 1, 0))
        else:
            extent = "0 -1 0 -1 0 -1"
        rgb = info.color or (128, 174, 128)
        header.update({
            f"Segment{n}_ID": str(info.metadata.get("slicer_id") or f"Segment_{label}"),
            f"Segment{n}_Name": info.name,
            f"Segment{n}_NameAutoGenerated": "0",
            f"Segment{n}_LabelValue": str(label),
            f"Segment{n}_Layer": str(where[label]),
            f"Segment{n}_Color": " ".join(f"{c / 255:.6f}" for c in rgb),
            f"Segment{n}_ColorAutoGenerated": "0",
            f"Segment{n}_Extent": extent,
            f"Segment{n}_Tags": "TerminologyEntry:" + format_terminology(info) + "|",
            f"Segment{n}_Terminology": format_terminology(info),
        })
    header["Segmentation_MasterRepresentation"] = "Binary labelmap"
    header["Segmentation_ContainedRepresentationNames"] = "Binary labelmap|"
    if len(layers) == 1:
        return write_image(seg.labelmap.with_array(layers[0]), p, header=header)
    ref = seg.labelmap.to_sitk()
    vec = sitk.Compose([sitk.GetImageFromArray(layer) for layer in layers])
    vec.CopyInformation(ref)
    for key, value in header.items():
        vec.SetMetaData(key, value)
    p.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(vec, str(p), True)
    return p
