"""Review logic: several segmentations of one volume, structures matched across vocabularies, navigation
across all models at once, verdicts in the engine's :class:`organsegbench.review.ReviewSession` (saved
atomically to the review file, mirrored in the parameter node), pairwise agreement between models.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np
from OrganSegBenchLib.evaluate import NodeMatch, match_segmentation_nodes, structure_labelmaps
from OrganSegBenchLib.nodes import LogFn
from OrganSegBenchLib.segments import load_segmentation_file
from OrganSegBenchLib.tables import table_node_from_rows

from SegmentationReviewLib import layout

logger = logging.getLogger(__name__)

#: parameter node parameter holding the session (JSON) and the review file path
STATE_PARAMETER = "ReviewState"
PATH_PARAMETER = "ReviewFile"


def volume_identity(volume_node) -> str:
    """What a review file is about: the volume's file name when it was loaded from one, else its node name."""
    storage = volume_node.GetStorageNode()
    if storage is not None and storage.GetFileName():
        return Path(storage.GetFileName()).name
    return volume_node.GetName()


class ReviewLogic:
    """State and actions of one review (no Qt)."""

    def __init__(self, volume_node, log: LogFn | None = None) -> None:
        from organsegbench.errors import OrganSegBenchError

        if volume_node is None:
            raise OrganSegBenchError("no volume selected", "choose the volume whose segmentations you review")
        self.volume_node = volume_node
        self.log = log or logger.info
        self.segmentations: dict[str, object] = {}
        self.session = None
        self.views: dict[str, list] = {}
        self._match: NodeMatch | None = None

    # ------------------------------------------------------------------------------------------------ inputs
    def _unique(self, name: str) -> str:
        base, k = name, 2
        while name in self.segmentations:
            name, k = f"{base} ({k})", k + 1
        return name

    def add_segmentation_node(self, node, model: str | None = None) -> str:
        """Review an existing segmentation node under ``model`` (default: its name)."""
        name = self._unique(model or node.GetName())
        self.segmentations[name] = node
        self._match = None
        return name

    def add_segmentation_file(self, path: str | Path, model: str | None = None) -> str:
        """Load a NIfTI/NRRD label map or DICOM SEG (resampled to the volume when on another grid, logged)."""
        name = self._unique(model or Path(path).name.split(".")[0])
        node = load_segmentation_file(path, reference_volume_node=self.volume_node, name=name, log=self.log)
        self.segmentations[name] = node
        self._match = None
        return name

    def add_segmentations_for_series(self, series_uid: str, folder: str | Path) -> list[str]:
        """Load every DICOM SEG under ``folder`` that references ``series_uid``; returns the model names."""
        from organsegbench.review import find_segmentations_for_series

        paths = find_segmentations_for_series(series_uid, folder)
        if not paths:
            self.log(f"no DICOM SEG under {folder} references series {series_uid}")
        return [self.add_segmentation_file(p) for p in paths]

    @property
    def models(self) -> list[str]:
        return list(self.segmentations)

    # ------------------------------------------------------------------------------------------------ structures
    def match(self) -> NodeMatch:
        """Structures matched across the models (code first, then harmonised name)."""
        if self._match is None:
            if not self.segmentations:
                from organsegbench.errors import OrganSegBenchError

                raise OrganSegBenchError("no segmentations loaded", "add segmentation files or nodes to review")
            self._match = match_segmentation_nodes(self.segmentations)
        return self._match

    def structure_rows(self) -> list[dict]:
        """Per structure: name, display name, how many models have it, and which."""
        return self.match().rows()

    def structure_table(self, table_node=None):
        """The structure rows as a table node (for the module's table view)."""
        return table_node_from_rows(self.structure_rows(), "Review structures", table_node)

    def present(self) -> dict[str, list[str]]:
        """Structure -> models that have it."""
        m = self.match().match
        return {r.structure: [mod for mod, p in zip(m.inputs, r.present, strict=True) if p] for r in m.rows}

    # ------------------------------------------------------------------------------------------------ session
    def open_session(self, path: str | Path, reviewer: str = ""):
        """Resume the review file at ``path`` (or start it), matching the loaded models and structures."""
        from organsegbench.review import ReviewSession

        present = self.present()
        self.session = ReviewSession.open(path, volume=volume_identity(self.volume_node), models=self.models,
                                          structures=list(present), present=present, reviewer=reviewer)
        done, total = self.session.progress()
        self.log(f"review file {path}: {done}/{total} verdicts so far; current structure "
                 f"{self.session.current_structure}")
        return self.session

    def _require_session(self):
        if self.session is None:
            from organsegbench.errors import OrganSegBenchError

            raise OrganSegBenchError("no review file is open", "choose a review file (new or existing) first")
        return self.session

    def set_verdict(self, structure: str, model: str, verdict: str, note: str | None = None):
        """Record a verdict (saved to the review file at once)."""
        return self._require_session().set_verdict(structure, model, verdict, note)

    def store(self, parameter_node) -> None:
        """Mirror the session in the parameter node (so it is saved with the scene)."""
        s = self._require_session()
        parameter_node.SetParameter(STATE_PARAMETER, json.dumps(s.to_dict()))
        parameter_node.SetParameter(PATH_PARAMETER, str(s.path or ""))

    def restore(self, parameter_node):
        """Rebuild the session from the parameter node (after loading a scene); ``None`` when it holds none."""
        from organsegbench.review import ReviewSession

        text = parameter_node.GetParameter(STATE_PARAMETER)
        if not text:
            return None
        self.session = ReviewSession.from_dict(json.loads(text), source="the parameter node")
        path = parameter_node.GetParameter(PATH_PARAMETER)
        self.session.path = Path(path) if path else None
        return self.session

    # ------------------------------------------------------------------------------------------------ views
    def show(self, layout_node=None, with_3d: bool = False) -> dict[str, list]:
        """Switch to the side-by-side layout (one row per model, each segmentation only in its row)."""
        self.views = layout.apply_review_layout(self.segmentations, self.volume_node, layout_node, with_3d=with_3d)
        return self.views

    def structure_centre(self, structure: str) -> np.ndarray | None:
        """Mean of the segment centres (RAS, mm) of ``structure`` over the models that have it."""
        centres = []
        for model, node in self.segmentations.items():
            for sid in self.match().segments_of(structure, model):
                c = layout.segment_centre_ras(node, sid)
                if c is not None:
                    centres.append(c)
        return np.mean(centres, axis=0) if centres else None

    def go(self, step: int) -> str | None:
        """Next (``step`` > 0) or previous structure across all models; every view is centred on it."""
        structure = self._require_session().go(step)
        self._centre(structure)
        return structure

    def go_to(self, structure: str) -> str:
        """Jump to ``structure`` (any spelling resolved by the match table) and centre the views."""
        name = self.match().match.row(structure).structure
        self._require_session().go_to(name)
        self._centre(name)
        return name

    def _centre(self, structure: str | None) -> None:
        if structure is None or not self.views:
            return
        centre = self.structure_centre(structure)
        if centre is not None:
            layout.centre_views(self.views, centre)

    # ------------------------------------------------------------------------------------------------ agreement
    def agreement_rows(self, metrics: tuple[str, ...] = ("dsc", "hd95")) -> list[dict]:
        """DSC and HD95 (mm) between every pair of models, per structure both have."""
        from organsegbench.errors import OrganSegBenchError
        from organsegbench.metrics import evaluate_pair

        rows = []
        for a, b in itertools.combinations(self.models, 2):
            try:
                ref, pred, labels = structure_labelmaps(self.segmentations[a], self.segmentations[b],
                                                        self.volume_node, self.log)
            except OrganSegBenchError as exc:
                self.log(f"{a} vs {b}: {exc.message}")
                continue
            values: dict[int, dict] = {k: {"structure": s, "model_a": a, "model_b": b} for k, s in labels.items()}
            for r in evaluate_pair(ref.array, pred.array, ref.spacing_zyx, labels=list(labels), metrics=metrics):
                values[r.label][r.metric] = float(r.value)
            rows.extend(values.values())
        if not rows and len(self.models) > 1:
            self.log("no pair of models has a structure in common")
        return rows

    def agreement_table(self, table_node=None):
        """The agreement rows as a table node (HD95 in mm)."""
        return table_node_from_rows(self.agreement_rows(), "Review agreement", table_node, units={"hd95": "mm"})
