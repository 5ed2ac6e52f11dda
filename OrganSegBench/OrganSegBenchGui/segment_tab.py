"""Segment tab (Qt): start a model run in a background process (or send it to the kept-loaded model worker), drain
its log with a QTimer, cancel it. Mixed into OrganSegBenchWidget; the work is in OrganSegBenchLib.segment_run and
OrganSegBenchLib.model_server (no Qt) and organsegbench.runner."""

import slicer
from slicer.i18n import tr as _


class SegmentTabMixin:
    """Segment actions of :class:`OrganSegBench.OrganSegBenchWidget` (Apply turns into Cancel while running)."""

    def onApplyButton(self) -> None:
        if self._job is not None or self.serverBusy():
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
            device = None if device == "auto" else device
            texts = [t.strip() for t in p.textPrompt.split(",") if t.strip()]
            kind = self.ui.promptKindSelector.currentText
            request = self.logic.segmentRequest(
                model=model, volumeNode=p.inputVolume, promptKind=kind, roiNode=p.roi, text=texts,
                structure=p.structureName or None, device=device, volumeOutput=p.volumeOutput)
            self.ui.progressBar.value = 0
            if p.keepModelLoaded and kind != "automatic":  # interactive: one worker keeps model, image, embeddings
                self._server = self.logic.modelServer(self._server, model, device, log=self.appendLog)
                self._server.submit(request)
            else:
                from OrganSegBenchLib.segment_run import SegmentJob

                if self._server is not None:  # free the kept model's (GPU) memory for this run
                    self._server.stop()
                    self._server = None
                self._job = SegmentJob(request, log=self.appendLog)
                self._job.start()
            self._timer.start()
        self.updateGui()

    def serverBusy(self) -> bool:
        """True while the kept-loaded model worker has requests in flight."""
        return bool(self._server and self._server.pending)

    def _pollServer(self) -> None:
        """Import the worker's finished results; show its progress."""
        if self._server.progress is not None:
            self.ui.progressBar.value = int(100 * self._server.progress)
        for request, out, reply in self._server.poll():
            with slicer.util.tryWithErrorDisplay(_("The model run failed."), waitCursor=True):
                segmentationNode = self._server.finish(request, out, reply)
                segmentationNode.CreateClosedSurfaceRepresentation()
                self.appendLog(_("Result added as segmentation '{name}'.").format(name=segmentationNode.GetName()))
                self._parameterNode.predictionSegmentation = segmentationNode
            self.updateGui()

    def onPollTimer(self) -> None:
        """Drain the background process output into the log (main thread; never blocks)."""
        if self._download is not None:
            self._pollDownload()
        if self._server is not None:
            self._pollServer()
        if self._job is None:
            if self._download is None and not self.serverBusy():
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
        """Cancel a running model, the kept-loaded worker's request or a download (kills the process tree)."""
        if self.serverBusy():
            self._server.cancel()
            self.ui.progressBar.value = 0
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
