"""Weights panel of the Segment tab (Qt): status of the selected model's checkpoints, background download with
Cancel, import of a local file, open the cache folder. Mixed into OrganSegBenchWidget (uses its ui, logic, log,
timer); the testable parts are in OrganSegBenchLib.weights."""

import qt
import slicer
from slicer.i18n import tr as _


class WeightsPanelMixin:
    """Weights actions of :class:`OrganSegBench.OrganSegBenchWidget`."""

    def updateWeightsStatus(self) -> None:
        name = self.ui.modelSelector.currentText
        try:
            rows = self.logic.weights(name)
        except Exception as exc:
            self.ui.weightsStatusLabel.text = str(exc)
            rows = []
        lines = [f"{'✔' if r['present'] else '✘'} {r['name']} ({r['licence']}"
                 + (f", {r['size_mb']} MB" if r["size_mb"] else "") + ")" for r in rows]
        self.ui.weightsStatusLabel.text = "\n".join(lines) or _("This model has no downloadable weights.")
        missing = [r for r in rows if not r["present"]]
        self.ui.downloadWeightsButton.enabled = bool(missing) and self._download is None
        self.ui.importWeightsButton.enabled = bool(rows)

    def onDownloadWeights(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not start the download."), waitCursor=True):
            missing = [r for r in self.logic.weights(self.ui.modelSelector.currentText) if not r["present"]]
            if not missing:
                return
            name = missing[0]["name"]
            if not slicer.util.confirmOkCancelDisplay(
                    _("Download weights '{name}' ({size} MB, licence {licence}) into {path}?").format(
                        name=name, size=missing[0]["size_mb"] or "?", licence=missing[0]["licence"],
                        path=missing[0]["path"])):
                return
            self._download = self.logic.downloadProcess(name)
            self._download.start()
            self.ui.downloadWeightsButton.enabled = False
            self._timer.start()

    def _pollDownload(self) -> None:
        for line in self._download.poll():
            self.appendLog(line)
        if self._download.progress is not None:
            self.ui.progressBar.value = int(100 * self._download.progress.fraction)
        if self._download.is_running():
            return
        result = self._download.result()
        self._download = None
        if result.ok:
            self.appendLog(_("Weights downloaded."))
        else:
            slicer.util.errorDisplay(_("Weights download failed:\n{log}").format(log="\n".join(result.log[-6:])))
        self.updateWeightsStatus()

    def onImportWeights(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not import the weights file."), waitCursor=True):
            rows = self.logic.weights(self.ui.modelSelector.currentText)
            if not rows:
                return
            path = qt.QFileDialog.getOpenFileName(self.parent, _("Weights file for {name}").format(
                name=rows[0]["name"]), "", _("Checkpoints (*.pth *.pt *.zip *.safetensors);;All files (*)"))
            if not path:
                return
            target = self.logic.importWeights(rows[0]["name"], path)
            self.appendLog(_("Imported {path} as {target}").format(path=path, target=target))
            self.updateWeightsStatus()

    def onOpenWeightsFolder(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not open the weights folder.")):
            from organsegbench.config import weights_dir

            qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(weights_dir())))

