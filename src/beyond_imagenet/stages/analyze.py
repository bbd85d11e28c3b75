"""Stage ``analyze``: every configured analysis on the caches -> records, figures, DVC metrics, MLflow runs.

What a run may replace: analysis ``X`` owns ``<records>/X/`` and ``<figures>/X/`` and nothing else. It builds its
records and figures in a hidden staging folder beside the stage's folders; only once it has succeeded do they
replace its own folders (``records.replace_folder``), so an analysis that fails leaves its previous outputs as they
were. ``--analyses X ...`` runs and replaces only the named analyses. A full run (no ``--analyses``) owns the
stage's folders: once every configured analysis has succeeded, the records and figures of registered analyses no
longer configured in params.yaml are removed too. Either way ``metrics.json`` is rebuilt from every record on
disk, so it never disagrees with them. Names, datasets, caches and side files are checked before anything is
written (docs/architecture.md, principle 6). Runs at once on one results folder swap one at a time
(``<results_dir>/.analyze.lock``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from beyond_imagenet.analyses.common import AnalysisContext
from beyond_imagenet.analyses.registry import ANALYSES, AnalysisSpec, resolve_analyses
from beyond_imagenet.analyses.store import CacheStore
from beyond_imagenet.base.config import AnalysesConfig, Params
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.files import exclusive_lock
from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.inference.cache import META_FILE, cache_path
from beyond_imagenet.records import load_records, relocated, replace_folder, write_metrics_file, write_records
from beyond_imagenet.stages.common import show_records
from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.stages.paths import StageFolder, stage_paths

DATASET_KEYS = ("datasets", "dataset", "second_id")  # section keys naming datasets whose caches an analysis reads
SIDE_PATHS = {"robustness": ("real_labels",), "imagenet_x": ("annotations_dir",)}  # section keys naming files
SHOWN_PROBLEMS = 10  # an up-front check lists this many problems, then counts the rest


def planned_analyses(analyses: AnalysesConfig, names: Sequence[str] | None) -> list[AnalysisSpec]:
    """The analyses a run executes: the named ones (each must be configured), else every configured one."""
    if names is None:
        return [spec for spec in ANALYSES.values() if spec.configured(analyses)]
    specs = resolve_analyses(list(dict.fromkeys(names)))  # unknown names fail with close matches
    idle = [spec.name for spec in specs if not spec.configured(analyses)]
    if idle:
        raise UserError(
            f"--analyses {' '.join(idle)}: params.yaml analyses.{idle[0]} names no dataset, so there is nothing to "
            f"run; give it one (analyses.{idle[0]}.dataset or .datasets) or leave it out of --analyses"
        )
    return specs


def section_datasets(section: Any) -> list[str]:
    """The datasets an analysis section names (``datasets``, ``dataset``, ``second_id``), in that order."""
    names: list[str] = []
    for key in DATASET_KEYS:
        value = getattr(section, key, None)
        names += list(value) if isinstance(value, list | tuple) else [value] if value else []
    return list(dict.fromkeys(names))


def has_some_cache(cache_dir: Path, dataset: str, model_id: str) -> bool:
    """Whether ``cache_dir`` holds a complete cache of the model on the dataset, plain or of one of its variants."""
    if (cache_path(cache_dir, dataset, model_id) / META_FILE).exists():
        return True
    return any((cache_dir / safe_name(dataset)).glob(f"*/{safe_name(model_id)}/{META_FILE}"))


def input_problems(specs: Sequence[AnalysisSpec], params: Params) -> list[str]:
    """What the planned analyses lack: caches of a configured (model, dataset), side files named in params.yaml."""
    cache_dir, problems = Path(params.inference.cache_dir), []
    for spec in specs:
        section = spec.section(params.analyses)
        for dataset in section_datasets(section):
            missing = [m for m in params.models if not has_some_cache(cache_dir, dataset, m)]
            if missing:
                problems.append(f"analyses.{spec.name}: no cache of {', '.join(missing)} on dataset {dataset!r}")
        for key in SIDE_PATHS.get(spec.name, ()):
            path = getattr(section, key)
            if path and not Path(path).exists():
                problems.append(f"analyses.{spec.name}.{key}: {path} does not exist")
    return problems


def check_inputs(specs: Sequence[AnalysisSpec], params: Params) -> None:
    """Raise one UserError listing every missing cache and side file, before anything is written."""
    problems = input_problems(specs, params)
    if problems:
        more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        raise UserError(
            f"analyze wrote nothing: {'; '.join(problems[:SHOWN_PROBLEMS])}{more}. Caches are read from "
            f"{params.inference.cache_dir} (params.yaml inference.cache_dir): run `beyond-imagenet infer` (or `dvc "
            "repro inference`) for missing ones, or fix the params.yaml entries named"
        )


@contextmanager
def staging(out: StageFolder) -> Iterator[tuple[Path, Path]]:
    """Hidden (records, figures) folders beside the stage's own, removed afterwards whatever happened."""
    folders = []
    try:
        for final in (out.records, out.figures):
            final.parent.mkdir(parents=True, exist_ok=True)
            folders.append(Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent)))
        yield folders[0], folders[1]
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def swap_lock(out: StageFolder) -> AbstractContextManager[None]:
    """Serialises the swaps and the metrics file of ``analyze`` runs at once on one results folder."""
    return exclusive_lock(out.root / ".analyze.lock")


def rebuild_metrics(out: StageFolder) -> None:
    """``metrics.json`` from every record on disk (under :func:`swap_lock`)."""
    with swap_lock(out):
        write_metrics_file(load_records(out.records), out.metrics)


def run_one(spec: AnalysisSpec, params: Params, store: CacheStore, out: StageFolder) -> list[ResultRecord]:
    """Run one analysis into staging folders; on success its records and figures replace its own folders."""
    with staging(out) as (records_dir, figures_dir):
        ctx = AnalysisContext(list(params.models), store, figures_dir, params.datasets, params.statistics)
        records = spec.run(spec.section(params.analyses), ctx)
        strays = sorted({r.analysis for r in records} - {spec.name})
        if strays:
            raise ValueError(f"analysis {spec.name!r} returned records of {strays}; it may write only its own")
        records = [relocated(r, figures_dir, out.figures) for r in records]
        write_records(records, records_dir)
        with swap_lock(out):
            replace_folder(figures_dir / spec.name, out.figures / spec.name)
            replace_folder(records_dir / spec.name, out.records / spec.name)
    return records


def remove_unconfigured(out: StageFolder, kept: set[str]) -> None:
    """Remove the records and figures of the registered analyses not in ``kept`` (other folders are left alone)."""
    for name in sorted(set(ANALYSES) - kept):
        for folder in (out.records / name, out.figures / name):
            if folder.exists():
                with swap_lock(out):
                    replace_folder(None, folder)


def analyze(params: Params, names: list[str] | None = None) -> list[ResultRecord]:
    """Run the analyses (default: every configured one); write their records and figures, rebuild metrics.json.

    Returns the records of this run only; see the module docstring for what a full and a partial run replace.
    """
    specs = planned_analyses(params.analyses, names)
    check_inputs(specs, params)
    out = stage_paths(params).analyze
    store = CacheStore(params.inference.cache_dir)
    records: list[ResultRecord] = []
    changed = False
    try:
        for spec in specs:
            records += run_one(spec, params, store, out)
            changed = True
        if names is None:
            changed = True
            remove_unconfigured(out, {spec.name for spec in specs})
    except BaseException:
        if changed:  # the analyses that succeeded replaced their records: the metrics file follows them
            rebuild_metrics(out)
        raise
    out.records.mkdir(parents=True, exist_ok=True)  # a DVC out, even when no analysis is configured
    rebuild_metrics(out)
    return records


def run_analyze(args: argparse.Namespace) -> None:
    """``beyond-imagenet analyze``: one line per record, then the MLflow runs."""
    params = load_stage_params(args.params)
    records = analyze(params, args.analyses)
    show_records(records, params.tracking, "analyze", not args.no_mlflow, stage_paths(params).manifests)
