"""Segment tab (Qt): start a model run in a background process, drain its log with a QTimer, cancel it. Mixed into
OrganSegBenchWidget; the work is in OrganSegBenchLib.segment_run (no Qt) and organsegbench.runner."""

import slicer
from slicer.i18n import tr as _


class SegmentTabMixin:
    """Segment actions of :class:`OrganSegBench.OrganSegBenchWidget` (Apply turns into Cancel while running)."""

    def onApplyButton(self) -> None:
        if self._job is not None:
            with slicer.util.tryWithErrorDisplay(_("Could not cancel the run."), waitCursor=True):
                self.cancelBackgroundWork()
            return
        with slicer.util.tryWithErrorDisplay(_("Could not start the model run."), waitCursor=True):
            p = self._parameterNode
            model = self.ui.modelSelector.currentText
            if not self.logic.ensureDependencies(model, confirm=slicer.util.confirmOkCancelDisplay):
                self.appendLog(_("Run not started: the required packages were not installed."))
                return
            device = self.ui.deviceSelector.currentText
            texts = [t.strip() for t in p.textPrompt.split(",") if t.strip()]
            self._job = self.logic.segmentJob(
                model=model, volumeNode=p.inputVolume, promptKind=self.ui.promptKindSelector.currentText,
                roiNode=p.roi, text=texts, structure=p.structureName or None,
                device=None if device == "auto" else device, volumeOutput=p.volumeOutput, log=self.appendLog)
            self.ui.progressBar.value = 0
            self._job.start()
            self._timer.start()
        self.updateGui()

    def onPollTimer(self) -> None:
        """Drain the background process output into the log (main thread; never blocks)."""
        if self._download is not None:
            self._pollDownload()
        if self._job is None:
            if self._download is None:
                self._timer.stop()
            return
        for line in self._job.poll():
            self.appendLog(line)
        if self._job.progress is not None:
            self.ui.progressBar.value = int(100 * self._job.progress)
        if self._job.is_running():
            return
        job, self._job = self._job, None
        if self._download is None:
            self._timer.stop()
        with slicer.util.tryWithErrorDisplay(_("The model run failed."), waitCursor=True):
            segmentationNode = job.finish()
            segmentationNode.CreateClosedSurfaceRepresentation()
            self.appendLog(_("Result added as segmentation '{name}'.").format(name=segmentationNode.GetName()))
            self._parameterNode.predictionSegmentation = segmentationNode
        self.updateGui()

    def cancelBackgroundWork(self) -> None:
        """Cancel a running model or download (kills the process tree)."""
        if self._job is not None:
            self._job.cancel()
            self._job = None
            self.ui.progressBar.value = 0
        if self._download is not None:
            self._download.cancel()
            self._download = None
            self.appendLog(_("Weights download cancelled (it resumes next time)."))
        if self._timer:
            self._timer.stop()
        if self._parameterNode:
            self.updateGui()
