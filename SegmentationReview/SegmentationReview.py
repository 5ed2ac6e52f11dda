"""Segmentation Review: Review several models' segmentations of one volume side by side.

Phase 1 of the extension: the module shows what it will do; its GUI comes with the MRML logic in SegmentationReviewLib.
"""

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin


class SegmentationReview(ScriptedLoadableModule):
    """Module description shown in Slicer's module panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Segmentation Review")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["OrganSegBench contributors"]
        self.parent.helpText = _("This module will load several segmentations of one volume (files or existing nodes, NIfTI or DICOM SEG), show one row of linked views per model, match structures across label vocabularies, step through structures across all models at once, record a verdict (accept / reject / needs edit) with a note per structure and model in a review file that reopening resumes, and compute pairwise agreement (DSC, HD95) between models.")
        self.parent.acknowledgementText = _(
            "OrganSegBench builds on SAM, SAM 2, TotalSegmentator, MOOSE and nnU-Net (all Apache-2.0) and on 3D Slicer."
        )


class SegmentationReviewWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """GUI: loads Resources/UI/SegmentationReview.ui."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SegmentationReview.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SegmentationReviewLogic()

    def cleanup(self) -> None:
        self.removeObservers()


class SegmentationReviewLogic(ScriptedLoadableModuleLogic):
    """Logic entry point (the MRML work lives in SegmentationReviewLib, usable without the GUI)."""


class SegmentationReviewTest(ScriptedLoadableModuleTest):
    """Self-test run from Slicer's Reload & Test."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_logic_constructs()

    def test_logic_constructs(self):
        self.delayDisplay("Constructing the logic")
        self.assertIsNotNone(SegmentationReviewLogic())
        self.delayDisplay("Test passed")
