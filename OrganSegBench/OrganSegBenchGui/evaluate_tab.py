"""Evaluate tab (Qt): metrics of a prediction against a reference into a table, plot, CSV export. Mixed into
OrganSegBenchWidget; the work is in OrganSegBenchLib.evaluate and OrganSegBenchLib.tables."""

import qt
import slicer
from slicer.i18n import tr as _


class EvaluateTabMixin:
    """Evaluate actions of :class:`OrganSegBench.OrganSegBenchWidget`."""

    def onEvaluateButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Evaluation failed."), waitCursor=True):
            p = self._parameterNode
            messages = []
            table = self.logic.evaluate(p.referenceSegmentation, p.predictionSegmentation, p.evaluationVolume,
                                        p.nsdToleranceMm, p.metricsTable, log=messages.append)
            p.metricsTable = table
            self.ui.evaluateStatusLabel.text = "\n".join(messages)
        self.updateGui()

    def onExportCsv(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not export the table."), waitCursor=True):
            path = qt.QFileDialog.getSaveFileName(self.parent, _("Export metrics"), "metrics.csv",
                                                  _("CSV (*.csv);;TSV (*.tsv)"))
            if path:
                from OrganSegBenchLib.tables import export_table_csv

                export_table_csv(self._parameterNode.metricsTable, path)
                self.ui.evaluateStatusLabel.text = _("Saved {path}").format(path=path)

    def onPlot(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not plot the table."), waitCursor=True):
            from OrganSegBenchLib.tables import bar_chart

            chart = bar_chart(self._parameterNode.metricsTable, "structure", "dsc", _("DSC per structure"))
            slicer.modules.plots.logic().ShowChartInLayout(chart)
