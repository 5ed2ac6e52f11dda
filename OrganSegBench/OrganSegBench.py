"""OrganSegBench: Segment organs with foundation and task-specific models and evaluate them.

Phase 1 of the extension: the module shows what it will do; its GUI comes with the MRML logic in OrganSegBenchLib.
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


class OrganSegBench(ScriptedLoadableModule):
    """Module description shown in Slicer's module panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("OrganSegBench")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["OrganSegBench contributors"]
        self.parent.helpText = _("This module will run organ segmentation models (SAM, SAM 2 with a box drawn as a Markups ROI, TotalSegmentator, MOOSE automatically, text-prompted models) on the selected volume in a background process with a live log and Cancel, import the result as named, coloured segments with SNOMED terminology, and evaluate a prediction against a reference segmentation (Dice, HD95, NSD) as a table and plot with CSV export.")
        self.parent.acknowledgementText = _(
            "OrganSegBench builds on SAM, SAM 2, TotalSegmentator, MOOSE and nnU-Net (all Apache-2.0) and on 3D Slicer."
        )


class OrganSegBenchWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """GUI: loads Resources/UI/OrganSegBench.ui."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/OrganSegBench.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = OrganSegBenchLogic()

    def cleanup(self) -> None:
        self.removeObservers()


class OrganSegBenchLogic(ScriptedLoadableModuleLogic):
    """Logic entry point (the MRML work lives in OrganSegBenchLib, usable without the GUI)."""


class OrganSegBenchTest(ScriptedLoadableModuleTest):
    """Self-test run from Slicer's Reload & Test."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_logic_constructs()

    def test_logic_constructs(self):
        self.delayDisplay("Constructing the logic")
        self.assertIsNotNone(OrganSegBenchLogic())
        self.delayDisplay("Test passed")
