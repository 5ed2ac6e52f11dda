"""Helpers shared by the analyses: the tidy table's columns and metric-name aliases."""

from __future__ import annotations

import pandas as pd

from organsegbench.errors import ConfigError

#: columns every tidy result table has (one row per case x model x structure x metric)
TIDY_COLUMNS = ("case", "model", "structure", "metric", "value", "reason", "status")

#: accepted spellings of the metrics the analyses use -> the spellings tried in the table, in order
METRIC_ALIASES: dict[str, tuple[str, ...]] = {
    "dsc": ("dsc", "dice", "DSC", "Dice"),
    "hd95": ("hd95", "HD95", "hausdorff95"),
    "volume_ml": ("volume_ml",),
    "volume_error_rate": ("volume_error_rate", "ver", "VER"),
}

#: the model name under which the reference's own measurements (volumes) are stored
REFERENCE_MODEL = "reference"


def require_columns(table: pd.DataFrame, columns: tuple[str, ...] | list[str], what: str = "table") -> None:
    """Raise :class:`ConfigError` naming the columns ``table`` lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConfigError(f"{what} lacks column(s) {missing}; it has {list(table.columns)}",
                          hint="pass the tidy long table written by `organsegbench evaluate` (results.parquet)")


def canonical_metric(name: str) -> str:
    """The registry spelling of a metric name (``dice`` -> ``dsc``); unknown names unchanged."""
    for key, aliases in METRIC_ALIASES.items():
        if name in aliases:
            return key
    return name


def metric_rows(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows of ``table`` for ``metric`` (aliases accepted, e.g. ``dsc`` for ``dice``), only status ``ok`` rows.

    Returns an empty frame (same columns) when the metric is absent.
    """
    require_columns(table, ("case", "model", "structure", "metric", "value"))
    names = METRIC_ALIASES.get(metric, (metric,))
    for key, aliases in METRIC_ALIASES.items():
        if metric in aliases:
            names = (key, *aliases)
    rows = table[table["metric"].isin(names)]
    if "status" in rows.columns:
        rows = rows[rows["status"].fillna("ok") == "ok"]
    return rows.copy()
