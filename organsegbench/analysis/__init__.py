"""The OrganSegBench analyses of a tidy result table: robustness, fairness, generalisation, clinical utility.

Every function takes the tidy long table written by ``organsegbench evaluate`` (columns case, model, structure,
metric, value, reason, status) and, for fairness and cardiac phenotypes, the per-case attribute table.
"""

from organsegbench.analysis.clinical import (
    bland_altman,
    bland_altman_plot,
    bland_altman_table,
    cardiac_phenotypes,
    cardiac_phenotypes_from_labelmaps,
    cohort_cardiac_phenotypes,
    heart_rate_from_header,
    resolve_heart_rate,
    volume_error,
    volume_error_summary,
    volumes_long,
)
from organsegbench.analysis.fairness import (
    DEFAULT_BANDS,
    assign_groups,
    epsilon_squared,
    eta_squared,
    fairness,
    overall_fairness,
)
from organsegbench.analysis.generalisation import generalisation, structure_means
from organsegbench.analysis.robustness import worst_cases, worst_count

__all__ = [
    "DEFAULT_BANDS", "assign_groups", "bland_altman", "bland_altman_plot", "bland_altman_table",
    "cardiac_phenotypes", "cardiac_phenotypes_from_labelmaps", "cohort_cardiac_phenotypes", "epsilon_squared",
    "eta_squared", "fairness", "generalisation", "heart_rate_from_header", "overall_fairness",
    "resolve_heart_rate", "structure_means", "volume_error", "volume_error_summary", "volumes_long", "worst_cases", "worst_count",
]
