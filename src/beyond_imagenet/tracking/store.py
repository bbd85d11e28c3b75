"""The MLflow store: client, experiments, run look-up by content key, artifacts the copied store serves itself.

Artifacts: an experiment created here has the location ``mlflow-artifacts:/<experiment>``, and files are written
straight into ``<artifact_location>/<experiment>/<run id>/artifacts/`` (``tracking.artifact_location``, relative to
the repository root). ``mlflow server --artifacts-destination mlruns/artifacts`` started from the root (``make
mlflow-ui``) proxies ``mlflow-artifacts:/`` to that folder, so the store holds no absolute path and a copied
``mlruns/`` serves its own files. An experiment made elsewhere (another location) gets ``client.log_artifact``.

mlflow is imported only inside functions (the GPU inference path never needs it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.files import exclusive_lock

PROXY_SCHEME = "mlflow-artifacts:/"
KEY_TAG = "content_key"  # hash of what a run holds: an unchanged rerun finds its run instead of adding one
SEEN_TAG = "logged_at_ms"  # when a run's content was last logged (created, or found unchanged): the newest is current
ROLE_TAG = "run_role"  # "analysis" (a parent), "model" (its children), "files", "probe", "trial"
ML_KIND = "custom_model_development"  # experiment tag mlflow.experimentKind: the UI opens the runs table
SQLITE_PREFIX = "sqlite:///"
LOCKED = "database is locked"  # SQLite's busy error: another process holds the write lock
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # waits between tries of a call that found the store locked

DESCRIPTION = """\
Beyond ImageNet accuracy: ViT vs ConvNeXt, supervised vs CLIP (ICML 2024), one run per model per analysis.

- **Parent runs** (tag `run_role=analysis`) are named after the analysis (accuracy, robustness, imagenet_x, pug,
  calibration, shape_bias, invariance, cka, vtab); expand one to see its **model runs** (named like the paper:
  ViT-sup, ConvNeXt-sup, ViT-clip, ConvNeXt-clip; "(demo)" for the demo stand-ins), coloured as in the figures.
- Deep links that open one analysis with its models side by side: `beyond-imagenet mlflow-links` (also printed by
  `make mlflow-ui` and `make demo`). Charts: the invariance sweeps are curves (step = shift or resolution in
  pixels, scale x100). Artifacts: the same `figures/...` names in every model run (Compare -> Artifacts); the
  all-model figures are on the parent. Datasets: the run's inputs, digest = manifest files_sha256.
- Params are the protocol knobs; provenance (hashes, versions, git) is in tags and `provenance.json`.
- `results` and `report` runs hold the tables and `report/report.html`. VTAB probe searches and their trials are
  in the experiment `<this experiment>-probe-trials`.
- An unchanged rerun adds no runs (tag `content_key`).
"""


def content_key(value) -> str:
    """A short stable hash of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:20]


def sqlite_file(config: TrackingConfig) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (None for another store)."""
    if not config.tracking_uri.startswith(SQLITE_PREFIX):
        return None
    return Path(config.tracking_uri.removeprefix(SQLITE_PREFIX).split("?", 1)[0])


@contextmanager
def store_lock(config: TrackingConfig) -> Iterator[None]:
    """Hold an exclusive lock on ``<database>.lock`` beside a SQLite store (nothing for other stores)."""
    database = sqlite_file(config)
    if database is None:
        yield
        return
    with exclusive_lock(database.with_name(database.name + ".lock")):
        yield


def is_locked_error(err: BaseException | None) -> bool:
    """Whether ``err`` or an exception it was raised from is SQLite's "database is locked"."""
    while err is not None:
        if LOCKED in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def _store_name(config: TrackingConfig) -> str:
    return str(sqlite_file(config) or config.tracking_uri)


def retrying(call: Callable[..., Any], what: str, config: TrackingConfig) -> Callable[..., Any]:
    """``call`` retried with back-off while the store is locked; still locked after the last try: a UserError."""

    @functools.wraps(call)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for delay in RETRY_DELAYS_S:
            try:
                return call(*args, **kwargs)
            except Exception as err:
                if not is_locked_error(err):
                    raise
            time.sleep(delay)
        try:
            return call(*args, **kwargs)
        except Exception as err:
            if is_locked_error(err):
                raise UserError(
                    f"the MLflow store {_store_name(config)} stayed locked by another process for "
                    f"{sum(RETRY_DELAYS_S):.0f} s ({what}): another run or `mlflow server` is writing to it. "
                    "Rerun when it is done, give this run its own store (params.yaml tracking.tracking_uri), "
                    "or skip logging (--no-mlflow)"
                ) from err
            raise

    return wrapper


class RetryingClient:
    """An ``MlflowClient`` whose every call retries while the SQLite store is locked (:func:`retrying`)."""

    def __init__(self, client: Any, config: TrackingConfig):
        self._client, self._config = client, config

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        return retrying(attr, name, self._config) if callable(attr) else attr


class _DropLockedErrors(logging.Filter):
    """Drops MLflow's logged traceback of a "database is locked" error: :class:`RetryingClient` handles it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return LOCKED not in record.getMessage()


def _quiet_locked_errors() -> None:
    logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _DropLockedErrors) for f in logger.filters):
        logger.addFilter(_DropLockedErrors())


def _open_client(config: TrackingConfig) -> Any:
    """``MlflowClient(tracking_uri)``; it creates or migrates a SQLite store, so under :func:`store_lock`."""
    from mlflow.tracking import MlflowClient

    with store_lock(config):
        try:
            return retrying(MlflowClient, "opening the store", config)(tracking_uri=config.tracking_uri)
        except UserError:
            raise
        except Exception as err:
            raise UserError(
                f"could not open the MLflow store {_store_name(config)} (params.yaml tracking.tracking_uri): "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}. "
                "If a run was interrupted while creating it, it is half-built: move it away and rerun"
            ) from err


def get_client(config: TrackingConfig) -> RetryingClient:
    """A retrying ``MlflowClient`` on the configured store (a SQLite store created under the store lock)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _quiet_locked_errors()
    return RetryingClient(_open_client(config), config)


def experiment_id(client, config: TrackingConfig, name: str | None = None, description: str = DESCRIPTION) -> str:
    """The experiment ``name`` (default: the suite's), created on first use with a proxied artifact location.

    Looked up and created under :func:`store_lock`, so two processes starting on a new store make it once.
    """
    name = name or config.experiment
    with store_lock(config):
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        Path(config.artifact_location).mkdir(parents=True, exist_ok=True)
        tags = {"mlflow.note.content": description, "mlflow.experimentKind": ML_KIND}
        return client.create_experiment(name, artifact_location=f"{PROXY_SCHEME}{name}", tags=tags)


def find_run(client, experiment: str, key: str):
    """The newest finished run tagged ``content_key=key``, or None."""
    runs = client.search_runs(
        [experiment], f"tags.{KEY_TAG} = '{key}' and attributes.status = 'FINISHED'", max_results=1
    )
    return runs[0] if runs else None


def now_ms() -> str:
    """The time as a ``SEEN_TAG`` value: milliseconds since the epoch, zero-padded so that strings sort as numbers."""
    return f"{time.time_ns() // 1_000_000:015d}"


def mark_seen(client, run_id: str) -> None:
    """Record that ``run_id``'s content is what the pipeline holds now (an unchanged rerun found it)."""
    client.set_tag(run_id, SEEN_TAG, now_ms())


def local_artifact_dir(config: TrackingConfig, artifact_uri: str) -> Path | None:
    """Where a proxied run's artifacts live on disk (None for another scheme)."""
    if not artifact_uri.startswith(PROXY_SCHEME):
        return None
    return Path(config.artifact_location) / artifact_uri.removeprefix(PROXY_SCHEME).lstrip("/")


class RunFiles:
    """Writes one run's artifacts: into the proxied folder, or through ``client.log_artifact`` otherwise."""

    def __init__(self, client, config: TrackingConfig, run):
        self.client, self.run_id = client, run.info.run_id
        self.root = local_artifact_dir(config, run.info.artifact_uri)

    def file(self, source: str | Path, artifact_path: str) -> None:
        """Copy ``source`` to ``artifact_path`` (the file's path in the run, name included)."""
        if self.root is None:
            folder, _, name = artifact_path.rpartition("/")
            if name == Path(source).name:
                self.client.log_artifact(self.run_id, str(source), folder or None)
            else:
                self.text(Path(source).read_bytes(), artifact_path)
            return
        target = self.root / artifact_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)

    def text(self, content: str | bytes, artifact_path: str) -> None:
        """Write ``content`` as ``artifact_path``."""
        if self.root is None:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / Path(artifact_path).name
                path.write_bytes(content if isinstance(content, bytes) else content.encode())
                folder = artifact_path.rpartition("/")[0]
                self.client.log_artifact(self.run_id, str(path), folder or None)
            return
        target = self.root / artifact_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())

    def json(self, value, artifact_path: str) -> None:
        """Write ``value`` as indented JSON."""
        self.text(json.dumps(value, indent=2, sort_keys=True, default=str), artifact_path)
