"""Cohort evaluation: cohort files (CSV/YAML), parallel per-case evaluation with a resumable cache, outputs."""

from organsegbench.cohort.case import EvalOptions, evaluate_case
from organsegbench.cohort.runner import CohortRun, evaluate_cohort, validate_structures
from organsegbench.cohort.schema import CaseSpec, Cohort, load_cohort

__all__ = ["CaseSpec", "Cohort", "CohortRun", "EvalOptions", "evaluate_case", "evaluate_cohort", "load_cohort",
           "validate_structures"]
