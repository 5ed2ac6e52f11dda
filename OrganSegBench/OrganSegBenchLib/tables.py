"""Metric tables as ``vtkMRMLTableNode`` (typed columns, units in column titles), CSV export through
``vtkMRMLTableStorageNode``, and bar plots of one column as ``vtkMRMLPlotChartNode``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import slicer
import vtk


def table_node_from_rows(rows: Sequence[dict], name: str, table_node=None, units: dict[str, str] | None = None):
    """Fill a table node from dict rows (column order of the first row; numbers become double columns, NaN
    stays NaN). ``units`` adds a unit to a column's title and its ``unitLabel`` property."""
    scene = slicer.mrmlScene
    if table_node is None:
        table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = table_node.GetTable()
    table_node.RemoveAllColumns()
    columns = list(rows[0]) if rows else []
    for row in rows[1:]:
        columns += [c for c in row if c not in columns]
    for col in columns:
        values = [r.get(col) for r in rows]
        numeric = all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values)
        arr = vtk.vtkDoubleArray() if numeric else vtk.vtkStringArray()
        arr.SetName(col)
        for v in values:
            if numeric:
                arr.InsertNextValue(math.nan if v is None else float(v))
            else:
                arr.InsertNextValue("" if v is None else str(v))
        table.AddColumn(arr)
        if units and col in units:
            table_node.SetColumnUnitLabel(col, units[col])
            table_node.SetColumnTitle(col, f"{col} ({units[col]})")
    table.Modified()
    table_node.Modified()
    return table_node


def rows_from_table_node(table_node) -> list[dict]:
    """The table's rows as dicts (numbers as float, text as str)."""
    table = table_node.GetTable()
    cols = [table.GetColumn(c) for c in range(table.GetNumberOfColumns())]
    out = []
    for r in range(table.GetNumberOfRows()):
        row = {}
        for col in cols:
            v = col.GetValue(r)
            row[col.GetName()] = float(v) if isinstance(col, vtk.vtkDataArray) else str(v)
        out.append(row)
    return out


def export_table_csv(table_node, path: str | Path) -> Path:
    """Write the table to CSV (``.csv``) or TSV (``.tsv``) with Slicer's table storage node; returns the path."""
    p = Path(path)
    if p.suffix.lower() not in (".csv", ".tsv"):
        from organsegbench.errors import OrganSegBenchError

        raise OrganSegBenchError(f"cannot export a table to {p.name!r}", "choose a file name ending in .csv or .tsv")
    p.parent.mkdir(parents=True, exist_ok=True)
    storage = slicer.vtkMRMLTableStorageNode()
    storage.SetFileName(str(p))
    if not storage.WriteData(table_node):
        raise OSError(f"could not write table {table_node.GetName()!r} to {p}")
    return p


def bar_chart(table_node, x_column: str, y_column: str, title: str, y_label: str | None = None):
    """A plot chart with one bar series of ``y_column`` against the text column ``x_column``."""
    scene = slicer.mrmlScene
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{title} {y_column}")
    series.SetAndObserveTableNodeID(table_node.GetID())
    series.SetXColumnName(x_column)
    series.SetYColumnName(y_column)
    series.SetLabelColumnName(x_column)
    series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeBar)
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", title)
    chart.AddAndObservePlotSeriesNodeID(series.GetID())
    chart.SetTitle(title)
    chart.SetXAxisTitle(x_column)
    chart.SetYAxisTitle(y_label or y_column)
    return chart
