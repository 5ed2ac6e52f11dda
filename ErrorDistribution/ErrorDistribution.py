"""Error Distribution: a predicted segment's surface coloured by its signed distance (mm) to a reference segment.

Thin widget over ErrorDistributionLib (no Qt): surface, distances (engine ``organsegbench.surfaces``), colour
table and legend, histogram table and plot, mesh and table export.
"""

import logging
import os
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

HELP = (
    "Choose a reference segment and a prediction segment and click Compute. The prediction's surface is coloured "
    "by its signed distance to the reference surface: blue (negative) where the prediction lies inside the "
    "reference (under-segmentation), red (positive) where it lies outside (over-segmentation), white on it. A "
    "colour legend, a histogram plot and summary statistics (mean, 95th percentile of |d|, share within the "
    "tolerance) are shown; the mesh (VTK/VTP/PLY/STL/OBJ, with the distance array) and the tables (CSV) can be "
    "exported."
)


class ErrorDistribution(ScriptedLoadableModule):
    """Module description shown in Slicer's module panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Error Distribution")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["OrganSegBench"]
        self.parent.contributors = ["OrganSegBench contributors"]
        self.parent.helpText = _(HELP)
        self.parent.acknowledgementText = _("Part of the OrganSegBench extension.")


@parameterNodeWrapper
class ErrorDistributionParameterNode:
    """Settings saved with the scene (segment choices live in the segment selector widgets)."""

    volume: vtkMRMLScalarVolumeNode
    toleranceMm: Annotated[float, WithinRange(0.1, 50.0)] = 2.0
    rangeMm: Annotated[float, WithinRange(0.0, 200.0)] = 0.0
    smoothingIterations: Annotated[int, WithinRange(0, 50)] = 0


class ErrorDistributionWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """GUI: inputs, compute, statistics, exports."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.errorMap = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ErrorDistribution.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = ErrorDistributionLogic()
        from OrganSegBenchLib import unsupported_python_message

        if unsupported_python_message():
            uiWidget.enabled = False
            slicer.util.errorDisplay(unsupported_python_message())
            return

        self.ui.referenceSegmentSelector.connect("currentSegmentChanged(QString)", self.updateGui)
        self.ui.predictionSegmentSelector.connect("currentSegmentChanged(QString)", self.updateGui)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.exportMeshButton.connect("clicked(bool)", self.onExportMesh)
        self.ui.exportTablesButton.connect("clicked(bool)", self.onExportTables)
        self.ui.showHistogramButton.connect("clicked(bool)", self.onShowHistogram)

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
        self.errorMap = None

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGui)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGui)
            self.updateGui()

    def updateGui(self, caller=None, event=None) -> None:
        ready = bool(self.ui.referenceSegmentSelector.currentSegmentID()) and bool(
            self.ui.predictionSegmentSelector.currentSegmentID())
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = "" if ready else _("Select a reference and a prediction segment")
        for w in (self.ui.exportMeshButton, self.ui.exportTablesButton, self.ui.showHistogramButton):
            w.enabled = self.errorMap is not None

    def onApplyButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not compute the error map."), waitCursor=True):
            p = self._parameterNode
            messages = []
            self.errorMap = self.logic.compute(
                self.ui.referenceSegmentSelector.currentNode(), self.ui.referenceSegmentSelector.currentSegmentID(),
                self.ui.predictionSegmentSelector.currentNode(), self.ui.predictionSegmentSelector.currentSegmentID(),
                p.volume, p.toleranceMm, p.rangeMm or None, p.smoothingIterations, log=messages.append)
            s = self.errorMap.stats
            self.ui.statsLabel.text = "\n".join(messages) + "\n" + _(
                "{n} vertices; mean {mean:.2f} mm; mean |d| {mabs:.2f} mm; 95% of |d| <= {p95:.2f} mm; "
                "max |d| {mx:.2f} mm; {within:.1f}% within {tol} mm").format(
                n=int(s["vertices"]), mean=s["mean_mm"], mabs=s["mean_abs_mm"], p95=s["p95_abs_mm"],
                mx=s["max_abs_mm"], within=100 * s["within_tolerance"], tol=s["tolerance_mm"])
            self.ui.predictionSegmentSelector.currentNode().GetDisplayNode().SetVisibility(False)
        self.updateGui()

    def onExportMesh(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not export the mesh."), waitCursor=True):
            path = qt.QFileDialog.getSaveFileName(self.parent, _("Export mesh"), "error_map.vtk",
                                                  _("Meshes (*.vtk *.vtp *.ply *.stl *.obj)"))
            if path:
                from ErrorDistributionLib.errormap import export_mesh

                export_mesh(self.errorMap.model_node, path)

    def onExportTables(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not export the tables."), waitCursor=True):
            folder = qt.QFileDialog.getExistingDirectory(self.parent, _("Folder for the CSV tables"))
            if folder:
                from ErrorDistributionLib.errormap import export_tables

                stem = self.errorMap.model_node.GetName().replace(" ", "_")
                paths = export_tables(self.errorMap, folder, stem)
                self.ui.statsLabel.text += "\n" + _("Saved {files}").format(
                    files=", ".join(os.path.basename(str(p)) for p in paths))

    def onShowHistogram(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not show the histogram.")):
            slicer.modules.plots.logic().ShowChartInLayout(self.errorMap.chart_node)


class ErrorDistributionLogic(ScriptedLoadableModuleLogic):
    """Scripted access to the error map computation."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return ErrorDistributionParameterNode(super().getParameterNode())

    def compute(self, referenceNode, referenceSegmentId, predictionNode, predictionSegmentId, volumeNode=None,
                toleranceMm=2.0, rangeMm=None, smoothingIterations=0, log=None):
        """See ``ErrorDistributionLib.errormap.compute_error_map``."""
        from ErrorDistributionLib.errormap import compute_error_map

        return compute_error_map(referenceNode, referenceSegmentId, predictionNode, predictionSegmentId,
                                 volumeNode, tolerance_mm=toleranceMm, range_mm=rangeMm,
                                 smoothing_iterations=smoothingIterations, log=log or logging.info)


class ErrorDistributionTest(ScriptedLoadableModuleTest):
    """Self-test: a sphere of radius 12 mm against one of 10 mm gives distances near +2 mm."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_sphere_gap()

    def test_sphere_gap(self):
        import numpy as np
        from OrganSegBenchLib.nodes import image_from_volume_node
        from OrganSegBenchLib.segments import add_segmentation

        from organsegbench.io import Segmentation, SegmentInfo

        self.delayDisplay("Error map of two spheres")
        volume = slicer.util.addVolumeFromArray(np.zeros((40, 40, 40), np.int16), name="synthetic")
        grid = image_from_volume_node(volume)
        zz, yy, xx = np.mgrid[:40, :40, :40]
        r2 = (zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2
        ref = add_segmentation(Segmentation(grid.with_array((r2 <= 100).astype(np.uint8)),
                                            {1: SegmentInfo(1, "liver")}), "ref", volume)
        pred = add_segmentation(Segmentation(grid.with_array((r2 <= 144).astype(np.uint8)),
                                             {1: SegmentInfo(1, "liver")}), "pred", volume)
        em = ErrorDistributionLogic().compute(ref, ref.GetSegmentation().GetNthSegmentID(0), pred,
                                              pred.GetSegmentation().GetNthSegmentID(0), volume)
        self.assertAlmostEqual(em.stats["mean_mm"], 2.0, delta=0.75)
        self.delayDisplay("Test passed")
