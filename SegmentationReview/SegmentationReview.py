"""Segmentation Review: several models' segmentations of one volume side by side, verdict per structure x model.

Thin widget over SegmentationReviewLib (layout, structure matching, navigation, agreement; no Qt) and the
engine's review session (verdicts saved atomically as JSON + CSV, resumed on reopen).
"""

import logging
import pathlib

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

HELP = (
    "Load several segmentations of one volume (existing nodes, NIfTI/NRRD label maps or DICOM SEG files; those on "
    "another grid are resampled to the volume and the log says so), choose a review file and click Start. Each "
    "model gets its own row of linked views showing only its segmentation. Structures are matched across "
    "vocabularies (terminology codes, then names) and listed with how many models have each. Step through the "
    "structures (all views centre on the current one) and record accept / reject / needs edit with a note per "
    "model: every verdict is written at once to the review file (JSON + CSV, crash-safe), and reopening the file "
    "resumes where you stopped. Agreement computes DSC and HD95 between every pair of models."
)

VERDICTS = {"accept": "accept", "reject": "reject", "needs edit": "needs_edit"}


class SegmentationReview(ScriptedLoadableModule):
    """Module description shown in Slicer's module panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Segmentation Review")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["OrganSegBench"]
        self.parent.contributors = ["OrganSegBench contributors"]
        self.parent.helpText = _(HELP)
        self.parent.acknowledgementText = _("Part of the OrganSegBench extension.")


@parameterNodeWrapper
class SegmentationReviewParameterNode:
    """Review settings saved with the scene; the verdicts themselves are mirrored by the logic (ReviewState)."""

    volume: vtkMRMLScalarVolumeNode
    reviewFile: pathlib.Path
    reviewer: str = ""
    show3D: bool = False


class SegmentationReviewWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """GUI: inputs, side-by-side review with verdicts, agreement."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.review = None  # SegmentationReviewLib.review.ReviewLogic
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SegmentationReview.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SegmentationReviewLogic()
        from OrganSegBenchLib import unsupported_python_message

        if unsupported_python_message():
            uiWidget.enabled = False
            slicer.util.errorDisplay(unsupported_python_message())
            return

        self.ui.addNodeButton.connect("clicked(bool)", self.onAddNode)
        self.ui.addFilesButton.connect("clicked(bool)", self.onAddFiles)
        self.ui.clearModelsButton.connect("clicked(bool)", self.onClearModels)
        self.ui.startReviewButton.connect("clicked(bool)", self.onStartReview)
        self.ui.previousButton.connect("clicked(bool)", lambda: self.onGo(-1))
        self.ui.nextButton.connect("clicked(bool)", lambda: self.onGo(1))
        self.ui.nextUnreviewedButton.connect("clicked(bool)", self.onNextUnreviewed)
        self.ui.saveVerdictButton.connect("clicked(bool)", self.onSaveVerdict)
        self.ui.verdictModelSelector.connect("currentIndexChanged(int)", self.showCurrentVerdict)
        self.ui.agreementButton.connect("clicked(bool)", self.onAgreement)
        self.ui.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateGui)
        self.ui.structuresTableView.connect("clicked(QModelIndex)", self.onStructureClicked)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGui)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)
        self.review = None

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.volume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first:
                self._parameterNode.volume = first

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGui)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGui)
            self.updateGui()

    def reviewFilePath(self):
        """The chosen review file, or None while the path field is empty."""
        path = self._parameterNode.reviewFile if self._parameterNode else None
        return None if path is None or str(path) in ("", ".") else path

    def log(self, text: str) -> None:
        self.ui.logTextEdit.appendPlainText(text)
        logging.info(text)

    def updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        hasVolume = bool(p.volume)
        nModels = len(self.review.segmentations) if self.review else 0
        inSession = bool(self.review and self.review.session)
        self.ui.addNodeButton.enabled = hasVolume and self.ui.segmentationSelector.currentNode() is not None
        self.ui.addFilesButton.enabled = hasVolume
        self.ui.clearModelsButton.enabled = nModels > 0
        self.ui.startReviewButton.enabled = nModels > 0 and self.reviewFilePath() is not None
        for w in (self.ui.previousButton, self.ui.nextButton, self.ui.nextUnreviewedButton,
                  self.ui.saveVerdictButton, self.ui.verdictModelSelector, self.ui.verdictSelector,
                  self.ui.noteLineEdit):
            w.enabled = inSession
        self.ui.agreementButton.enabled = nModels > 1

    # ------------------------------------------------------------------------------------------------ inputs
    def _reviewLogic(self):
        volume = self._parameterNode.volume
        if self.review is None or self.review.volume_node is not volume:
            self.review = self.logic.newReview(volume, log=self.log)
            self.ui.modelsListWidget.clear()
        return self.review

    def onAddNode(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not add the segmentation."), waitCursor=True):
            name = self._reviewLogic().add_segmentation_node(self.ui.segmentationSelector.currentNode())
            self.ui.modelsListWidget.addItem(name)
        self.updateGui()

    def onAddFiles(self) -> None:
        paths = qt.QFileDialog.getOpenFileNames(self.parent, _("Segmentation files"), "",
                                                _("Segmentations (*.nii *.nii.gz *.nrrd *.seg.nrrd *.dcm);;All (*)"))
        with slicer.util.tryWithErrorDisplay(_("Could not load a segmentation file."), waitCursor=True):
            for path in paths:
                name = self._reviewLogic().add_segmentation_file(path)
                self.ui.modelsListWidget.addItem(name)
        self.updateGui()

    def onClearModels(self) -> None:
        self.review = None
        self.ui.modelsListWidget.clear()
        self.updateGui()

    # ------------------------------------------------------------------------------------------------ review
    def onStartReview(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not start the review."), waitCursor=True):
            p = self._parameterNode
            review = self._reviewLogic()
            review.show(slicer.app.layoutManager().layoutLogic().GetLayoutNode(), with_3d=p.show3D)
            review.open_session(self.reviewFilePath(), reviewer=p.reviewer)
            review.store(p.parameterNode)
            self.ui.structuresTableView.setMRMLTableNode(review.structure_table())
            self.ui.verdictModelSelector.clear()
            for model in review.models:
                self.ui.verdictModelSelector.addItem(model)
            review.go(0)
            self.showCurrentVerdict()
        self.updateGui()

    def onGo(self, step: int) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not move to the structure.")):
            self.review.go(step)
            self.showCurrentVerdict()

    def onNextUnreviewed(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not move to the structure.")):
            structure = self.review.session.next_unreviewed()
            if structure is None:
                slicer.util.infoDisplay(_("Every structure of every model has a verdict."))
                return
            self.review.go_to(structure)
            self.showCurrentVerdict()

    def onStructureClicked(self, index) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not move to the structure.")):
            table = self.ui.structuresTableView.mrmlTableNode()
            structure = table.GetCellText(index.row(), 0)
            self.review.go_to(structure)
            self.showCurrentVerdict()

    def showCurrentVerdict(self, index=None) -> None:
        if not (self.review and self.review.session):
            return
        s = self.review.session
        structure = s.current_structure
        done, total = s.progress()
        self.ui.currentStructureLabel.text = structure or ""
        self.ui.progressLabel.text = _("{done} of {total} verdicts recorded").format(done=done, total=total)
        model = self.ui.verdictModelSelector.currentText
        if structure and model in s.models:
            entry = s.entry(structure, model)
            present = s.has(structure, model)
            self.ui.saveVerdictButton.enabled = present
            self.ui.saveVerdictButton.toolTip = "" if present else _("This model has no such structure.")
            label = {"accept": "accept", "reject": "reject", "needs_edit": "needs edit"}.get(entry.verdict.value)
            if label:
                self.ui.verdictSelector.currentText = label
            self.ui.noteLineEdit.text = entry.note

    def onSaveVerdict(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not save the verdict."), waitCursor=True):
            s = self.review.session
            verdict = VERDICTS[self.ui.verdictSelector.currentText]
            self.review.set_verdict(s.current_structure, self.ui.verdictModelSelector.currentText, verdict,
                                    self.ui.noteLineEdit.text)
            self.review.store(self._parameterNode.parameterNode)
            self.showCurrentVerdict()

    def onAgreement(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Agreement computation failed."), waitCursor=True):
            table = self._reviewLogic().agreement_table()
            self.ui.agreementTableView.setMRMLTableNode(table)


class SegmentationReviewLogic(ScriptedLoadableModuleLogic):
    """Scripted access: ``logic.newReview(volume)`` returns a SegmentationReviewLib ReviewLogic."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return SegmentationReviewParameterNode(super().getParameterNode())

    def newReview(self, volumeNode, log=None):
        from SegmentationReviewLib.review import ReviewLogic

        return ReviewLogic(volumeNode, log=log)


class SegmentationReviewTest(ScriptedLoadableModuleTest):
    """Self-test: two synthetic models, matching, verdict saved and resumed from the review file."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_review_resume()

    def test_review_resume(self):
        import os
        import tempfile

        import numpy as np
        from OrganSegBenchLib.nodes import image_from_volume_node
        from OrganSegBenchLib.segments import add_segmentation

        from organsegbench.io import Segmentation, SegmentInfo

        self.delayDisplay("Reviewing two synthetic models")
        volume = slicer.util.addVolumeFromArray(np.zeros((16, 24, 24), np.int16), name="synthetic")
        grid = image_from_volume_node(volume)
        a = np.zeros(grid.shape, np.uint8)
        a[4:10, 5:15, 5:15] = 1
        b = np.roll(a, 1, axis=1)
        nodeA = add_segmentation(Segmentation(grid.with_array(a), {1: SegmentInfo(1, "liver")}), "A", volume)
        nodeB = add_segmentation(Segmentation(grid.with_array(b), {1: SegmentInfo(1, "Liver")}), "B", volume)
        logic = SegmentationReviewLogic()
        review = logic.newReview(volume)
        review.add_segmentation_node(nodeA, "A")
        review.add_segmentation_node(nodeB, "B")
        self.assertEqual([r["models"] for r in review.structure_rows()], [2])
        path = os.path.join(tempfile.mkdtemp(), "review.json")
        review.open_session(path)
        review.set_verdict("liver", "B", "needs_edit", "shifted")
        again = logic.newReview(volume)
        again.add_segmentation_node(nodeA, "A")
        again.add_segmentation_node(nodeB, "B")
        session = again.open_session(path)
        self.assertEqual(session.entry("liver", "B").note, "shifted")
        self.delayDisplay("Test passed")
