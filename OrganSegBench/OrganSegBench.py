"""OrganSegBench: segment organs with foundation and task-specific models, and evaluate segmentations.

The widget is thin: every action calls OrganSegBenchLib (MRML logic, no Qt, tested headless on slicer-core).
Model runs and weight downloads run in a background process (engine ``organsegbench.runner``: subprocess +
reader thread), drained by a ``qt.QTimer`` (OrganSegBenchGui/segment_tab.py); Apply turns into Cancel, which kills
the whole process tree.
"""

import logging
from typing import Annotated

import qt
import slicer
import vtk
from OrganSegBenchGui.evaluate_tab import EvaluateTabMixin
from OrganSegBenchGui.segment_tab import SegmentTabMixin
from OrganSegBenchGui.weights_panel import WeightsPanelMixin
from slicer import vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

HELP = (
    "Segment: choose a volume and a model, give a prompt (a box drawn as a Markups ROI, structure names as text, "
    "or none for automatic models) and click Apply. The model runs in a background process with a live log; "
    "Apply turns into Cancel. With 'keep the model loaded', box and text prompts go to one model worker that keeps "
    "the model, the volume and the slice embeddings, so redrawing a box only decodes. The result is added as named, "
    "coloured segments with SNOMED terminology. Missing "
    "Python packages are installed on first use after you confirm; PyTorch comes from the PyTorch extension. "
    "Weights are downloaded into a per-user cache (or imported from a file you have) and checked by sha256.<br>"
    "Evaluate: choose a reference and a prediction segmentation; structures are matched by terminology code, then "
    "by name across vocabularies; Dice, HD95, NSD and more go into a table you can plot and export as CSV."
)


class OrganSegBench(ScriptedLoadableModule):
    """Module description shown in Slicer's module panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("OrganSegBench")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["OrganSegBench contributors"]
        self.parent.helpText = _(HELP)
        self.parent.acknowledgementText = _(
            "OrganSegBench builds on SAM, SAM 2, TotalSegmentator, MOOSE and nnU-Net (all Apache-2.0) and on 3D Slicer."
        )


@parameterNodeWrapper
class OrganSegBenchParameterNode:
    """Settings of the module saved with the scene (per-machine settings such as the device are in QSettings)."""

    inputVolume: vtkMRMLScalarVolumeNode
    promptKind: Annotated[str, Choice(["box", "text", "automatic"])] = "box"
    roi: vtkMRMLMarkupsROINode
    structureName: str = "liver"
    textPrompt: str = ""
    volumeOutput: bool = True
    keepModelLoaded: bool = True
    referenceSegmentation: vtkMRMLSegmentationNode
    predictionSegmentation: vtkMRMLSegmentationNode
    evaluationVolume: vtkMRMLScalarVolumeNode
    nsdToleranceMm: Annotated[float, WithinRange(0.1, 20.0)] = 2.0
    metricsTable: vtkMRMLTableNode


class OrganSegBenchWidget(ScriptedLoadableModuleWidget, VTKObservationMixin, SegmentTabMixin, WeightsPanelMixin,
                          EvaluateTabMixin):
    """GUI of the Segment and Evaluate tabs."""

    POLL_MS = 200

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None  # SegmentJob while a model runs
        self._server = None  # ModelServer kept between box/text prompts
        self._download = None  # BackgroundProcess while weights download
        self._timer = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/OrganSegBench.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = OrganSegBenchLogic()
        from OrganSegBenchLib import unsupported_python_message

        if unsupported_python_message():
            uiWidget.enabled = False
            slicer.util.errorDisplay(unsupported_python_message())
            return

        self._timer = qt.QTimer()
        self._timer.setInterval(self.POLL_MS)
        self._timer.connect("timeout()", self.onPollTimer)

        self.ui.deviceSelector.currentText = qt.QSettings().value("OrganSegBench/device", "auto")
        self.ui.deviceSelector.connect("currentIndexChanged(int)", self.onDeviceChanged)
        self.ui.modelSelector.connect("currentIndexChanged(int)", self.onModelChanged)
        self.ui.promptKindSelector.connect("currentIndexChanged(int)", self.updateGui)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)
        self.ui.downloadWeightsButton.connect("clicked(bool)", self.onDownloadWeights)
        self.ui.importWeightsButton.connect("clicked(bool)", self.onImportWeights)
        self.ui.openWeightsFolderButton.connect("clicked(bool)", self.onOpenWeightsFolder)
        self.ui.evaluateButton.connect("clicked(bool)", self.onEvaluateButton)
        self.ui.exportCsvButton.connect("clicked(bool)", self.onExportCsv)
        self.ui.plotButton.connect("clicked(bool)", self.onPlot)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.updateDependencyStatus()
        self.fillModelList()
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.cancelBackgroundWork()
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.removeObservers()
        if self._timer:
            self._timer.stop()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGui)

    def onSceneStartClose(self, caller, event) -> None:
        self.cancelBackgroundWork()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first:
                self._parameterNode.inputVolume = first

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGui)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGui)
            self.updateGui()

    # ------------------------------------------------------------------------------------------------ state
    def updateGui(self, caller=None, event=None) -> None:
        """Enable only what can be used now (no dead buttons)."""
        p = self._parameterNode
        if p is None:
            return
        running = self._job is not None or self.serverBusy()
        kind = self.ui.promptKindSelector.currentText
        self.ui.roiSelector.enabled = kind == "box" and not running
        self.ui.structureNameLineEdit.enabled = kind == "box" and not running
        self.ui.volumeOutputCheckBox.enabled = kind == "box" and not running
        self.ui.textPromptLineEdit.enabled = kind == "text" and not running
        ready = bool(p.inputVolume) and self.ui.modelSelector.count > 0 and (
            kind != "box" or bool(p.roi)) and (kind != "text" or bool(p.textPrompt.strip()))
        self.ui.applyButton.enabled = running or ready
        self.ui.applyButton.text = _("Cancel") if running else _("Apply")
        self.ui.applyButton.toolTip = _("Stop the run (kills the model process and its workers)") if running else (
            _("Run the model") if ready else _("Select a volume, a model and a prompt first"))
        self.ui.evaluateButton.enabled = bool(p.referenceSegmentation) and bool(p.predictionSegmentation)
        has_table = bool(p.metricsTable) and p.metricsTable.GetNumberOfRows() > 0
        self.ui.exportCsvButton.enabled = has_table
        self.ui.plotButton.enabled = has_table
        self.ui.metricsTableView.setMRMLTableNode(p.metricsTable)

    def updateDependencyStatus(self) -> None:
        """Show the install row only while engine packages are missing (checked without importing them)."""
        from OrganSegBenchLib.dependencies import missing_requirements

        missing = missing_requirements()
        self.ui.dependenciesWidget.visible = bool(missing)
        self.ui.dependenciesLabel.text = _("Missing Python packages: {names}").format(names=", ".join(missing))

    def onInstallDependencies(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Installing the Python packages failed."), waitCursor=True):
            from OrganSegBenchLib.dependencies import ensure_requirements

            if ensure_requirements(slicer.util.confirmOkCancelDisplay, slicer.util.pip_install):
                self.appendLog(_("Python packages installed."))
        self.updateDependencyStatus()
        self.fillModelList()
        self.updateGui()

    def fillModelList(self) -> None:
        """Models from the engine registry; the list is empty (Apply disabled) when the engine cannot load."""
        self.ui.modelSelector.clear()
        try:
            rows = self.logic.models()
        except Exception as exc:  # the engine's own dependencies may be missing until the first run
            self.appendLog(_("Model list unavailable: {error}").format(error=exc))
            return
        self._modelRows = {r["name"]: r for r in rows}
        for name in sorted(self._modelRows):
            self.ui.modelSelector.addItem(name)

    def onModelChanged(self, index=None) -> None:
        name = self.ui.modelSelector.currentText
        row = getattr(self, "_modelRows", {}).get(name)
        if row is None:
            self.ui.modelInfoLabel.text = ""
            self.ui.weightsStatusLabel.text = _("Select a model to see its weights.")
            self.ui.downloadWeightsButton.enabled = False
            self.ui.importWeightsButton.enabled = False
            return
        from OrganSegBenchLib.weights import describe_model

        self.ui.modelInfoLabel.text = describe_model(row)
        kinds = row.get("prompt_kinds", [])
        for i, kind in enumerate(("box", "text", "automatic")):
            wanted = {"box": "box", "text": "text", "automatic": "none"}[kind]
            self.ui.promptKindSelector.model().item(i).setEnabled(wanted in kinds)
        self.updateWeightsStatus()
        self.updateGui()

    def onDeviceChanged(self, index) -> None:
        qt.QSettings().setValue("OrganSegBench/device", self.ui.deviceSelector.currentText)

    def appendLog(self, text: str) -> None:
        self.ui.logTextEdit.appendPlainText(text)
        logging.info(text)


class OrganSegBenchLogic(ScriptedLoadableModuleLogic):
    """Entry points for the GUI and for scripts (``slicer.util.getModuleLogic('OrganSegBench')``); the work is in
    OrganSegBenchLib, which imports the engine lazily so that loading the module never needs its packages."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return OrganSegBenchParameterNode(super().getParameterNode())

    def models(self) -> list:
        from OrganSegBenchLib.weights import model_rows

        return [r for r in model_rows() if "error" not in r]

    def weights(self, model: str) -> list:
        from OrganSegBenchLib.weights import weights_rows

        return weights_rows(model)

    def downloadProcess(self, name: str):
        from OrganSegBenchLib.weights import download_process

        return download_process(name)

    def importWeights(self, name: str, path: str):
        from OrganSegBenchLib.weights import import_local_file

        return import_local_file(name, path)

    def ensureDependencies(self, model: str, confirm) -> bool:
        """Install the engine's and the model's packages (and PyTorch via its extension) after confirmation."""
        from OrganSegBenchLib import dependencies as D

        if not D.ensure_requirements(confirm, slicer.util.pip_install):
            return False
        if not D.ensure_torch(confirm):
            return False
        return D.ensure_requirements(confirm, slicer.util.pip_install, D.model_requirements(model), purpose=model)

    def segmentRequest(self, model, volumeNode, promptKind="automatic", roiNode=None, text=None, structure=None,
                       device=None, volumeOutput=True):
        """What to run (a ``SegmentRequest``), for a background job or the kept-loaded model worker."""
        from OrganSegBenchLib.segment_run import SegmentRequest

        return SegmentRequest(model=model, volume_node=volumeNode, prompt=promptKind, roi_node=roiNode,
                              text=list(text or []), structure=structure, device=device,
                              mode="volume" if volumeOutput else "prompted")

    def segmentJob(self, model, volumeNode, promptKind="automatic", roiNode=None, text=None, structure=None,
                   device=None, volumeOutput=True, log=None):
        """A not-yet-started background run (``.start()``/``.poll()``/``.cancel()``/``.finish()``)."""
        from OrganSegBenchLib.segment_run import SegmentJob

        return SegmentJob(self.segmentRequest(model, volumeNode, promptKind, roiNode, text, structure, device,
                                              volumeOutput), log=log)

    def modelServer(self, current, model, device=None, log=None):
        """``current`` when it serves this model on this device, else a new kept-loaded worker (the old one is
        stopped)."""
        from OrganSegBenchLib.model_server import ModelServer

        if current is not None and current.key == (model, None, device):
            return current
        if current is not None:
            current.stop()
        return ModelServer(model, device=device, log=log)

    def segment(self, model, volumeNode, **kwargs):
        """Blocking run for scripts and batch use; returns the new segmentation node."""
        log = kwargs.pop("log", logging.info)
        return self.segmentJob(model, volumeNode, log=log, **kwargs).run_blocking()

    def evaluate(self, referenceNode, predictionNode, volumeNode=None, nsdToleranceMm=2.0, tableNode=None,
                 log=None):
        """Metrics per common structure into a table node (created when ``tableNode`` is None)."""
        from OrganSegBenchLib.evaluate import evaluate_segmentations
        from OrganSegBenchLib.tables import table_node_from_rows

        rows, units = evaluate_segmentations(referenceNode, predictionNode, volumeNode,
                                             nsd_tolerance_mm=nsdToleranceMm, log=log)
        name = f"{predictionNode.GetName()} vs {referenceNode.GetName()}"
        return table_node_from_rows(rows, name, tableNode, units=units)


class OrganSegBenchTest(ScriptedLoadableModuleTest):
    """Self-test (Reload & Test): evaluation and ROI prompts on synthetic volumes, no model weights needed."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_evaluate_synthetic()
        self.setUp()
        self.test_roi_prompt()

    def test_evaluate_synthetic(self):
        import numpy as np
        from OrganSegBenchLib.synthetic import segmentation_from_array, synthetic_volume

        self.delayDisplay("Evaluating two synthetic segmentations")
        volume = synthetic_volume()
        ref = np.zeros((20, 30, 30), np.uint8)
        ref[5:15, 10:20, 10:20] = 1
        refNode = segmentation_from_array(volume, ref, {1: "liver"}, "ref")
        predNode = segmentation_from_array(volume, np.roll(ref, 2, axis=2), {1: "Liver"}, "pred")
        table = OrganSegBenchLogic().evaluate(refNode, predNode, volume)
        self.assertEqual(table.GetNumberOfRows(), 1)
        dsc = table.GetTable().GetValueByName(0, "dsc").ToDouble()
        self.assertAlmostEqual(dsc, 0.8, places=6)  # 10-voxel cube shifted by 2 voxels
        self.delayDisplay("Test passed")

    def test_roi_prompt(self):
        from OrganSegBenchLib.prompts import roi_to_voxel_box
        from OrganSegBenchLib.synthetic import synthetic_volume

        self.delayDisplay("ROI to box prompt")
        volume = synthetic_volume()
        roi = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
        roi.SetCenter(-15.0, -15.0, 19.0)
        roi.SetSize(10.0, 10.0, 4.0)
        box = roi_to_voxel_box(roi, volume)
        self.assertEqual(box.i, (10, 20))
        self.assertEqual(box.k, (9, 10))
        self.delayDisplay("Test passed")
