"""Error Distribution: Map the surface distance between a prediction and a reference.

Phase 1 of the extension: the module shows what it will do; its GUI comes with the MRML logic in ErrorDistributionLib.
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


class ErrorDistribution(ScriptedLoadableModule):
    """Module description shown in Slicer's module panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Error Distribution")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["OrganSegBench contributors"]
        self.parent.helpText = _("This module will colour the surface of a predicted segment by its signed distance (mm) to the reference segment, add a scalar bar and a histogram plot, and export the mesh and the distance table.")
        self.parent.acknowledgementText = _(
            "OrganSegBench builds on SAM, SAM 2, TotalSegmentator, MOOSE and nnU-Net (all Apache-2.0) and on 3D Slicer."
        )


class ErrorDistributionWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """GUI: loads Resources/UI/ErrorDistribution.ui."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ErrorDistribution.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = ErrorDistributionLogic()

    def cleanup(self) -> None:
        self.removeObservers()


class ErrorDistributionLogic(ScriptedLoadableModuleLogic):
    """Logic entry point (the MRML work lives in ErrorDistributionLib, usable without the GUI)."""


class ErrorDistributionTest(ScriptedLoadableModuleTest):
    """Self-test run from Slicer's Reload & Test."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_logic_constructs()

    def test_logic_constructs(self):
        self.delayDisplay("Constructing the logic")
        self.assertIsNotNone(ErrorDistributionLogic())
        self.delayDisplay("Test passed")
