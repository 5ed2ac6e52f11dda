"""DICOM SEG with highdicom: read a (multi-segment) SEG into a :class:`Segmentation`, write one from a label map.

Reading uses the SEG's own geometry (plane positions, orientation, pixel spacing via highdicom's volume API), so a
SEG reads without its CT. Label values are the SEG's segment numbers, unless a ``vocabulary`` is given and every
segment name resolves to one of its structures, in which case the vocabulary's label values are used.
Overlapping segments follow the policy in :mod:`organsegbench.io.segmentation` (exact masks kept).

Writing needs the source image series; the label map must be on its grid (or is resampled when asked). Segment
numbers are 1..N in ascending label order (DICOM requires consecutive numbers; the original label value is kept
in the segment's TrackingID as ``label:<value>`` so that a round trip restores it).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from organsegbench.errors import InputFileError
from organsegbench.io.image import Image
from organsegbench.io.segment_info import DEFAULT_CATEGORY, DEFAULT_TYPE, SegmentInfo
from organsegbench.io.segmentation import Segmentation

log = logging.getLogger(__name__)
_BACKGROUND_CODE = "125040"  # DCM "Background", the implicit segment of LABELMAP SEGs


def _volume_to_image(vol: Any, array: np.ndarray, **metadata: Any) -> tuple[Image, np.ndarray]:
    """Turn a highdicom Volume geometry + array ``(slices, rows, cols)`` into a right-handed :class:`Image`."""
    affine = np.asarray(vol.affine, dtype=float)
    steps = affine[:3, :3]  # columns: physical step along array axes 0 (slice), 1 (row), 2 (column)
    spacing_zyx = np.linalg.norm(steps, axis=0)
    d_x, d_y, d_z = steps[:, 2] / spacing_zyx[2], steps[:, 1] / spacing_zyx[1], steps[:, 0] / spacing_zyx[0]
    origin = affine[:3, 3].copy()
    if np.dot(np.cross(d_x, d_y), d_z) < 0:  # slices stored against the normal: flip to ITK's usual handedness
        array = array[::-1]
        origin = origin + (array.shape[0] - 1) * steps[:, 0]
        d_z = -d_z
    direction = np.column_stack([d_x, d_y, d_z]) + 0.0  # no negative zeros
    img = Image(array=np.zeros(array.shape, dtype=np.uint8), spacing=tuple(spacing_zyx[::-1]), origin=tuple(origin),
                direction=direction, metadata=metadata)
    return img, np.ascontiguousarray(array)


def _code_dict(code: Any) -> dict[str, str] | None:
    if code is None:
        return None
    return {"value": str(code.value), "scheme": str(code.scheme_designator), "meaning": str(code.meaning)}


def _segment_info(desc: Any, number: int) -> SegmentInfo:
    import highdicom as hd

    info = SegmentInfo(label=number, name=str(desc.segment_label), category=_code_dict(
        desc.segmented_property_category), type=_code_dict(desc.segmented_property_type))
    type_item = desc.SegmentedPropertyTypeCodeSequence[0]
    if "SegmentedPropertyTypeModifierCodeSequence" in type_item:
        m = type_item.SegmentedPropertyTypeModifierCodeSequence[0]
        info.type_modifier = {"value": m.CodeValue, "scheme": m.CodingSchemeDesignator, "meaning": m.CodeMeaning}
    if desc.anatomic_regions:
        info.anatomic_region = _code_dict(desc.anatomic_regions[0])
    if "RecommendedDisplayCIELabValue" in desc:
        info.color = hd.color.CIELabColor.from_dicom_value(desc.RecommendedDisplayCIELabValue).to_rgb(clip=True)
    info.algorithm_type = desc.algorithm_type.value
    if desc.algorithm_identification:
        item = desc.algorithm_identification[0]
        info.algorithm_name = str(item.AlgorithmName)
        info.metadata["algorithm_version"] = str(item.get("AlgorithmVersion", ""))
    info.metadata["segment_number"] = number
    if desc.tracking_id:
        info.metadata["tracking_id"] = str(desc.tracking_id)
    if desc.tracking_uid:
        info.metadata["tracking_uid"] = str(desc.tracking_uid)
    return info


def _vocabulary_labels(infos: dict[int, SegmentInfo], vocabulary: Any) -> dict[int, int] | None:
    """segment number -> vocabulary label when every segment name resolves, else None."""
    from organsegbench.io.segment_info import load_vocabulary

    vocab = load_vocabulary(vocabulary)
    by_name = {str(n).lower(): v for v, n in getattr(vocab, "labels", {}).items()}
    try:
        from organsegbench.labels import canonical_name
    except ImportError:  # pragma: no cover - labels package absent
        canonical_name = None  # type: ignore[assignment]
    mapping = {}
    for number, info in infos.items():
        candidates = [info.name, info.name.replace(" ", "_")]
        if canonical_name is not None:
            try:
                candidates.append(canonical_name(info.name))
            except Exception:  # unknown name: try the others
                pass
        hit = next((by_name[c.lower()] for c in candidates if c and c.lower() in by_name), None)
        if hit is None:
            log.warning("segment %r is not in vocabulary %r; keeping the SEG's segment numbers", info.name,
                        vocabulary)
            return None
        mapping[number] = int(hit)
    return mapping if len(set(mapping.values())) == len(mapping) else None


def read_dicom_seg(path: str | Path, vocabulary: Any = None) -> Segmentation:
    """Read a DICOM SEG (BINARY, FRACTIONAL >= 0.5, or LABELMAP) on its own frame-of-reference grid.

    Raises:
        InputFileError: not a SEG, or frames that do not form a regular volume.
    """
    import highdicom as hd

    p = Path(path)
    try:
        dseg = hd.seg.segread(p)
    except Exception as exc:
        raise InputFileError(f"cannot read DICOM SEG {str(p)!r}: {exc}",
                             "check that the file is a complete DICOM Segmentation object") from exc
    numbers = [n for n in dseg.segment_numbers
               if dseg.get_segment_description(n).segmented_property_type.value != _BACKGROUND_CODE]
    infos = {n: _segment_info(dseg.get_segment_description(n), n) for n in numbers}
    for info in infos.values():  # our own writer keeps the original label value in TrackingID
        tid = info.metadata.get("tracking_id", "")
        if tid.startswith("label:") and tid[6:].isdigit():
            info.metadata["label_value"] = int(tid[6:])
    source = dseg.get_source_image_uids()
    meta = {"source": str(p), "format": "dicom-seg", "series_uid": str(dseg.SeriesInstanceUID),
            "modality": "SEG", "segmentation_type": dseg.segmentation_type.value,
            "frame_of_reference_uid": str(dseg.get("FrameOfReferenceUID", "")),
            "series_description": str(dseg.get("SeriesDescription", "")),
            "referenced_series_uids": sorted({s[1] for s in source}),
            "referenced_sop_instance_uids": sorted({s[2] for s in source})}
    if not numbers:
        raise InputFileError(f"DICOM SEG {str(p)!r} holds no segments", "check the file")
    relabel = _vocabulary_labels(infos, vocabulary) if vocabulary is not None else None
    if relabel is None and all("label_value" in i.metadata for i in infos.values()) and \
            len({i.metadata["label_value"] for i in infos.values()}) == len(infos):
        relabel = {n: i.metadata["label_value"] for n, i in infos.items()}
    labels = {n: (relabel[n] if relabel else n) for n in numbers}
    # one segment at a time (a 104-segment CT SEG would need gigabytes as one 4D array): pass 1 flattens into
    # the label map (higher label wins) and counts coverage; pass 2 re-reads only segments that overlap
    grid, lm, cover = None, None, None
    for n in sorted(numbers, key=labels.__getitem__):
        seg_grid, mask = _read_segment(dseg, n, p)
        if lm is None:
            grid = seg_grid.with_array(np.zeros(mask.shape, dtype=np.uint8), **meta)
            max_label = max(labels.values())
            lm = np.zeros(mask.shape, dtype=np.uint8 if max_label < 256 else np.uint16 if max_label < 65536
                          else np.uint32)
            cover = np.zeros(mask.shape, dtype=np.uint8)
        lm[mask] = labels[n]
        cover[mask] = np.minimum(cover[mask], 1) + 1
    shared = cover > 1
    overlap_masks = {}
    if shared.any():
        for n in numbers:
            _, mask = _read_segment(dseg, n, p)
            if np.any(mask & shared):
                overlap_masks[labels[n]] = mask
    segments: dict[int, SegmentInfo] = {}
    for n in numbers:
        infos[n].label = labels[n]
        segments[labels[n]] = infos[n]
    seg = Segmentation(labelmap=grid.with_array(lm), segments=dict(sorted(segments.items())),
                       overlap_masks=overlap_masks, metadata=meta)
    seg.flag_overlaps()
    return seg


def _read_segment(dseg: Any, number: int, path: Path) -> tuple[Image, np.ndarray]:
    """The SEG's grid and one segment's boolean mask on it (FRACTIONAL thresholded at 0.5)."""
    fractional = dseg.segmentation_type.value == "FRACTIONAL"
    try:
        vol = dseg.get_volume(segment_numbers=[number], combine_segments=False,
                              dtype=np.float32 if fractional else np.uint8)
    except Exception as exc:
        raise InputFileError(f"DICOM SEG {str(path)!r} does not form a regular 3D volume: {exc}",
                             "only SEGs whose frames are parallel planes of one grid can be read") from exc
    arr = vol.array[..., 0] if vol.array.ndim == 4 else vol.array
    return _volume_to_image(vol, (arr >= 0.5) if fractional else arr > 0)


# ------------------------------------------------------------------------------------------------ writing
def _coded(d: dict[str, str]) -> Any:
    import highdicom as hd

    return hd.sr.CodedConcept(value=d["value"], scheme_designator=d["scheme"], meaning=d["meaning"])


def _on_ct_grid(seg: Segmentation, ct: Image, resample: bool) -> Segmentation:
    """The segmentation on the CT grid (lossless re-indexing, or nearest neighbour when asked)."""
    return seg.on_grid(ct, resample=resample, option="resample=True (API) or --resample (command line)",
                       name="label map", reference_name="source series")


def write_dicom_seg(seg: Segmentation, source_series_dir: str | Path, out_path: str | Path, *,
                    series_uid: str | None = None, resample: bool = False, seg_type: str = "binary",
                    algorithm_name: str | None = None, algorithm_version: str = "",
                    series_description: str = "Segmentation", manufacturer: str = "OrganSegBench",
                    compression: str | None = None) -> Path:
    """Write ``seg`` as a DICOM SEG referencing the image series in ``source_series_dir``.

    Args:
        seg: the segmentation (names, codes, colours come from ``seg.segments``; segments without codes get
            SNOMED category 85756007 "Tissue" / type 91723000 "Anatomical structure" and a warning).
        source_series_dir: folder of the CT/MR series the label map was made on.
        out_path: the ``.dcm`` to write.
        series_uid: which series of the folder, when it holds several.
        resample: resample (nearest neighbour) a label map that is not on the series grid; otherwise a
            :class:`GeometryMismatchError` names both geometries.
        seg_type: ``"binary"`` (widest viewer support, allows overlaps) or ``"labelmap"`` (DICOM Label Map
            Segmentation, no overlaps).
        algorithm_name: algorithm identification when the segments carry none.
        compression: None (uncompressed, read by every SEG tool), ``"jpeg2000"`` (lossless, both types; often
            10x smaller) or, for ``seg_type="labelmap"`` only, ``"rle"`` / ``"jpegls"``.

    Returns:
        ``out_path``.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, RLELossless

    from organsegbench import __version__
    from organsegbench.io.dicom_series import read_dicom_series, select_series

    syntaxes = {None: ExplicitVRLittleEndian, "jpeg2000": JPEG2000Lossless, "rle": RLELossless,
                "jpegls": JPEGLSLossless}
    if compression not in syntaxes or (seg_type.lower() == "binary" and compression in ("rle", "jpegls")):
        raise InputFileError(f"compression {compression!r} is not available for a {seg_type} SEG",
                             "use jpeg2000 (either type), rle or jpegls (labelmap only), or none")
    labels = sorted(seg.segments)
    if not labels:
        raise InputFileError("the segmentation holds no segments; nothing to write", "check the label map")
    series = select_series(source_series_dir, series_uid)
    ct = read_dicom_series(source_series_dir, series.uid)
    seg = _on_ct_grid(seg, ct, resample)
    counts = seg.voxel_counts()
    stray = sorted(set(np.unique(seg.labelmap.array).tolist()) - set(labels) - {0})
    if stray:
        log.warning("label values %s have no SegmentInfo and are not written; add them to seg.segments", stray)
    empty = [seg.segments[lab].name for lab in labels if counts[lab] == 0]
    if empty:
        log.warning("segments %s are empty on the source grid; they are written without frames", empty)
    # headers only (highdicom copies attributes, never source pixels); same order as the slices of `ct`
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in series.files]
    required = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID")
    missing = [k for k in required if not sources[0].get(k)]
    if missing:
        raise InputFileError(
            f"the source series in {str(source_series_dir)!r} has no {', '.join(missing)} (anonymised?); a DICOM "
            "SEG must reference the UIDs of its source images",
            "use a series with its UIDs, or write the segmentation as NIfTI/NRRD (.nii.gz, .seg.nrrd)")
    defaults = [seg.segments[lab].name for lab in labels if seg.segments[lab].type is None]
    if defaults:
        log.warning("segments %s have no SNOMED codes; using category Tissue (SCT 85756007) and type "
                    "Anatomical structure (SCT 91723000)", defaults)
    descriptions = []
    for number, label in enumerate(labels, start=1):
        info = seg.segments[label]
        name = info.algorithm_name or algorithm_name or "unspecified"
        algo_type = (info.algorithm_type or "AUTOMATIC").upper()
        algo_id = None if algo_type == "MANUAL" else hd.AlgorithmIdentificationSequence(
            name=name, family=codes.cid7162.ArtificialIntelligence,
            version=str(info.metadata.get("algorithm_version") or algorithm_version or "unknown"))
        color = hd.color.CIELabColor.from_rgb(*info.color) if info.color else None
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=info.name[:64],
            segmented_property_category=_coded(info.category or DEFAULT_CATEGORY),
            segmented_property_type=_coded(info.type or DEFAULT_TYPE),
            algorithm_type=algo_type, algorithm_identification=algo_id, tracking_id=f"label:{label}",
            tracking_uid=hd.UID(), anatomic_regions=[_coded(info.anatomic_region)] if info.anatomic_region else None,
            display_color=color))
        if info.type_modifier:
            descriptions[-1].SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
                _coded(info.type_modifier)]
    if seg_type.lower() == "labelmap" and seg.overlapping:
        raise InputFileError("segments overlap, so they cannot be written as a LABELMAP SEG",
                             "use seg_type='binary' (the default)")
    if seg.overlapping:  # one boolean plane per segment (the only layout that can hold overlaps)
        pixels = np.stack([seg.segment_mask(lab) for lab in labels], axis=-1)
    else:  # label values -> consecutive segment numbers through a lookup table (one array, any label count)
        lut = np.zeros(int(seg.labelmap.array.max(initial=0)) + 1, dtype=np.uint8 if len(labels) < 256 else np.uint16)
        for number, label in enumerate(labels, start=1):
            if label < lut.size:
                lut[label] = number
        pixels = lut[seg.labelmap.array]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    charset = sources[0].get("SpecificCharacterSet") or "ISO_IR 192"  # empty in many CTs: write UTF-8
    with warnings.catch_warnings():  # highdicom warns about the source's single-component patient names
        warnings.filterwarnings("ignore", message=".*person name.*", category=UserWarning)
        dseg = hd.seg.Segmentation(
            source_images=sources, pixel_array=pixels, segmentation_type=seg_type.upper(),
            segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=900,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer=manufacturer,
            manufacturer_model_name="organsegbench", software_versions=str(__version__),
            device_serial_number="0", series_description=series_description[:64],
            specific_character_set=charset, transfer_syntax_uid=syntaxes[compression])
    dseg.save_as(out)
    log.info("wrote DICOM SEG %s (%d segments, references series %s)", out, len(labels), series.uid)
    return out
