"""Self-contained HTML report of a cohort evaluation: accuracy distributions, robustness with a worst-case gallery,
fairness, generalisation and clinical utility (Bland-Altman), with all plots embedded as base64 PNG."""

from organsegbench.report.html import build_html, write_report

__all__ = ["build_html", "write_report"]
