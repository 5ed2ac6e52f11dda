"""Cohort evaluation: validate, evaluate cases in parallel (local processes or a Dask cluster), cache per case,
write the tidy table, the analysis tables and the report.

Parallelism: ``workers=1`` runs in this process; otherwise a :class:`concurrent.futures.ProcessPoolExecutor` with
``workers`` processes (default: CPU count, at most 8); ``scheduler="tcp://host:8786"`` (or an in-process LocalCluster
address) submits cases to a :mod:`dask.distributed` cluster instead. Cases whose cached result is still valid are
not evaluated again (see :mod:`organsegbench.cohort.cache`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from organsegbench.cohort import cache
from organsegbench.cohort.case import EvalOptions, evaluate_case, harmonise, read_labelmap
from organsegbench.cohort.schema import REFERENCE, CaseSpec, Cohort, load_cohort
from organsegbench.errors import GeometryMismatchError, OrganSegBenchError, unknown_name

log = logging.getLogger(__name__)

#: seconds to wait for a Dask scheduler before giving up
SCHEDULER_TIMEOUT_S = 10.0


@dataclass
class CohortRun:
    """The outcome of :func:`evaluate_cohort`.

    Attributes:
        table: tidy long table (case, model, structure, metric, value, reason, status, provenance columns).
        cases: one row per case with its attributes (plus heart_rate / heart_rate_source when known).
        analyses: analysis tables by name (also written as ``OUT/analysis/<name>.csv``).
        summary: counts (cases, evaluated, cached, missing, errors), options and provenance.
        out_dir: the output folder.
    """

    table: pd.DataFrame
    cases: pd.DataFrame
    analyses: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None


# ----------------------------------------------------------------------------------------------- validation
def validate_vocabularies(cohort: Cohort) -> None:
    """Every vocabulary named in the cohort must exist (UnknownNameError with close matches otherwise)."""
    names = sorted({v for c in cohort.cases for v in c.vocabularies.values()})
    if not names:
        return
    from organsegbench.labels import get_vocabulary

    for n in names:
        get_vocabulary(n)


def validate_metrics(metrics: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Resolve requested metric names (aliases such as ``dice`` or ``HD95`` included) to registry names of
    :data:`organsegbench.metrics.METRICS`; unknown names raise ``UnknownNameError`` listing close matches."""
    if metrics is None:
        return None
    from organsegbench.metrics import resolve_metrics

    return tuple(resolve_metrics(metrics))


def known_structures(cohort: Cohort, level: str = "harmonised") -> set[str]:
    """Harmonised structure names the cohort can produce: from its vocabularies and its first readable reference."""
    known: set[str] = set()
    vocabs = sorted({v for c in cohort.cases for v in c.vocabularies.values()})
    if vocabs:
        from organsegbench.labels import get_vocabulary

        for v in vocabs:
            labels = get_vocabulary(v).labels
            known |= set(_harmonised_names(labels, level).values())
    for case in cohort.cases:
        if case.reference is not None and Path(case.reference).exists():
            img, names = read_labelmap(Path(case.reference), case.vocabularies.get(REFERENCE))
            known |= set(harmonise(img.array, names, level)[1].values())
            break
    return known


def _harmonised_names(labels: dict[int, str], level: str) -> dict[int, str]:
    if level == "none":
        return dict(labels)
    from organsegbench.labels import harmonise as harmonise_labels

    return harmonise_labels(labels, level=level, strict=False)


def validate_structures(cohort: Cohort, structures: tuple[str, ...] | None, level: str = "harmonised"
                        ) -> tuple[str, ...] | None:
    """Resolve requested structure names (synonyms, then harmonised level); UnknownNameError with close matches
    for a name the cohort cannot produce."""
    if not structures:
        return None
    known = known_structures(cohort, level)
    out = []
    for s in structures:
        name = s
        if name not in known:
            try:
                from organsegbench.labels import canonical_name

                name = canonical_name(s)
                name = _harmonised_names({1: name}, level)[1]
            except (ImportError, OrganSegBenchError):
                name = s
        if name not in known:
            raise unknown_name("structure", s, sorted(known))
        out.append(name)
    return tuple(dict.fromkeys(out))


def resolve_level(cohort: Cohort, level: str) -> str:
    """The harmonisation level to use: ``auto`` -> ``canonical`` for cardiac cohorts (a ``phase`` attribute keeps
    the ventricles apart), else ``harmonised``; other levels are checked."""
    levels = ("canonical", "harmonised", "grouped", "none")
    if level == "auto":
        return "canonical" if "phase" in cohort.attribute_names else "harmonised"
    if level not in levels:
        raise unknown_name("harmonisation level", level, list(levels) + ["auto"])
    return level


# ----------------------------------------------------------------------------------------------- execution
def _serial(fn: Callable, cases: list[CaseSpec], options: EvalOptions) -> Iterator[dict]:
    for c in cases:
        yield fn(c, options)


def _ignore_sigint() -> None:
    """Worker initialiser: Ctrl-C is the parent's to handle (it stops the workers), so a worker never dies
    half-way through sending a result while the parent waits for it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _local_pool(fn: Callable, cases: list[CaseSpec], options: EvalOptions, workers: int) -> Iterator[dict]:
    """Evaluate ``cases`` on ``workers`` local processes, yielding results as they finish.

    When the consumer stops early (Ctrl-C, an error, a closed generator) the pending cases are cancelled and the
    worker processes are terminated instead of waited for, so an interrupted run never hangs.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint)
    futures = [pool.submit(fn, c, options) for c in cases]
    finished = False
    try:
        for f in as_completed(futures):
            yield f.result()
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in processes:
                if proc.is_alive():
                    proc.terminate()
            for proc in processes:
                proc.join(timeout=10)


def _dask(fn: Callable, cases: list[CaseSpec], options: EvalOptions, address: str) -> Iterator[dict]:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - dask[distributed] is a base dependency
        from organsegbench.errors import DependencyError

        raise DependencyError("--scheduler needs dask.distributed", hint="pip install 'dask[distributed]'") from exc
    try:
        client = Client(address, timeout=f"{SCHEDULER_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise OrganSegBenchError(f"cannot reach the Dask scheduler at {address!r}: {exc}",
                                 hint="start one with `dask scheduler` (and workers), or leave out --scheduler "
                                      "to use local processes") from exc
    try:
        futures = client.map(fn, cases, [options] * len(cases), pure=False)
        try:
            for f in as_completed(futures, loop=client.loop):
                yield f.result()
        finally:
            client.cancel(futures)
    finally:
        client.close()


def _raise_fatal(fatal: tuple[str, str, str | None]) -> None:
    cls_name, message, hint = fatal
    cls = GeometryMismatchError if cls_name == "GeometryMismatchError" else OrganSegBenchError
    raise cls(message, hint)


def evaluate_cohort(cohort: Cohort | str | Path, out_dir: str | Path, options: EvalOptions | None = None,
                    workers: int | None = None, scheduler: str | None = None, progress: bool = True,
                    report: bool = True, bands: dict[str, list[float]] | None = None,
                    attributes: list[str] | None = None, alpha: float = 0.05, fairness_metric: str = "dsc",
                    evaluate: Callable[[CaseSpec, EvalOptions], dict] = evaluate_case) -> CohortRun:
    """Evaluate every case of ``cohort`` and write the outputs into ``out_dir``.

    Outputs: ``results.csv`` / ``results.parquet`` (tidy long table), ``cases.csv`` (attributes), ``analysis/*.csv``,
    ``summary.json`` and ``report.html`` (unless ``report`` is false); per-case cache in ``cache/``.

    Args:
        cohort: a :class:`Cohort` or the path of a cohort file.
        out_dir: output folder (created; reused for the cache on reruns).
        options: metrics, structures, resampling, NSD tolerance (mm), harmonisation level.
        workers: local worker processes (default CPU count, at most 8; 1 = this process).
        scheduler: Dask scheduler address; its workers need ``organsegbench`` installed and the input paths.
        progress: show a progress bar (tqdm).
        report: write ``report.html``.
        bands, attributes, alpha, fairness_metric: fairness settings (see :func:`organsegbench.analysis.fairness`).
        evaluate: the per-case function (replaceable to instrument or count evaluations).

    Raises:
        ConfigError: malformed cohort file. UnknownNameError: unknown metric, structure or vocabulary.
        GeometryMismatchError: a prediction on another grid and ``options.resample`` is false.
    """
    if not isinstance(cohort, Cohort):
        cohort = load_cohort(cohort)
    options = options or EvalOptions()
    validate_vocabularies(cohort)
    from organsegbench.analysis._common import canonical_metric

    validate_metrics((canonical_metric(fairness_metric),))
    level = resolve_level(cohort, options.harmonise)
    options = EvalOptions(metrics=validate_metrics(options.metrics),
                          structures=validate_structures(cohort, options.structures, level),
                          resample=options.resample, nsd_tolerance_mm=options.nsd_tolerance_mm, harmonise=level)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = {c.id: cache.case_key(c, options) for c in cohort.cases}
    frames: dict[str, pd.DataFrame] = {}
    for c in cohort.cases:
        hit = cache.load(cache.cache_file(out, c.id), keys[c.id])
        if hit is not None:
            frames[c.id] = hit
    todo = [c for c in cohort.cases if c.id not in frames]
    n_cached = len(frames)
    n_workers = workers or min(8, os.cpu_count() or 1)
    if scheduler:
        results = _dask(evaluate, todo, options, scheduler)
    elif n_workers <= 1 or len(todo) <= 1:
        results = _serial(evaluate, todo, options)
    else:
        results = _local_pool(evaluate, todo, options, min(n_workers, len(todo)))
    evaluated = 0
    bar = _progress(len(todo), progress, cached=len(frames))
    try:
        for res in results:
            if res.get("fatal"):
                _raise_fatal(res["fatal"])
            df = pd.DataFrame(res["rows"])
            cache.save(cache.cache_file(out, res["case"]), df, keys[res["case"]])
            frames[res["case"]] = cache.load(cache.cache_file(out, res["case"]), keys[res["case"]])
            evaluated += int(res.get("evaluated", 1))
            bar.update(1)
    finally:
        bar.close()
        if hasattr(results, "close"):
            results.close()
    from organsegbench.cohort.outputs import write_outputs

    table = pd.concat([frames[c.id] for c in cohort.cases], ignore_index=True)
    table = cache.normalise(table)
    return write_outputs(cohort, table, out, options, evaluated=evaluated, cached=n_cached,
                         scheduler=scheduler, workers=n_workers, report=report, bands=bands,
                         attributes=attributes, alpha=alpha, fairness_metric=fairness_metric)


def _progress(total: int, enabled: bool, cached: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled or total == 0, unit="case",
                desc=f"evaluating ({cached} cached)" if cached else "evaluating")


def summary_json(path: Path, summary: dict[str, Any]) -> None:
    """Write ``summary.json`` (NaN-safe)."""
    path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
