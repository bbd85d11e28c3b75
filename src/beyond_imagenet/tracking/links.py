"""Deep links into the MLflow UI (3.x): one per analysis, opening its model runs side by side.

The UI (a hash router) reads, on ``#/experiments/<id>/runs``: ``workflowType=machine_learning`` (the
model-training view, not GenAI's traces), ``searchFilter`` (a runs search filter), ``orderByKey``/``orderByAsc`` and
``compareRunsMode`` (``TABLE``, ``CHART`` or ``ARTIFACT``). The filter selects the children of the analysis' current
parent run (the one last logged or found unchanged), so a link shows exactly the models of the last pipeline run,
coloured as in the figures.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.tracking.store import ROLE_TAG, SEEN_TAG, get_client

ANALYSES = ("accuracy", "robustness", "imagenet_x", "pug", "calibration", "shape_bias", "invariance", "cka", "vtab")
CHART_ANALYSES = ("calibration", "invariance")  # open on the charts (curves, per-model bars) rather than the table


def children_filter(parent_run_id: str) -> str:
    """The runs search filter selecting one parent's model runs."""
    return f"tags.`mlflow.parentRunId` = '{parent_run_id}'"


def runs_url(base: str, experiment: str, search_filter: str, mode: str = "TABLE") -> str:
    """The UI URL of the experiment's runs in model-training view with ``search_filter`` applied."""
    query = {
        "workflowType": "machine_learning",
        "searchFilter": search_filter,
        "orderByKey": "tags.`mlflow.runName`",  # sorted by name, the UI lists the children flat (not under the parent)
        "orderByAsc": "true",
        "compareRunsMode": mode,
    }
    return f"{base.rstrip('/')}/#/experiments/{experiment}/runs?{urlencode(query, quote_via=quote)}"


def latest_parents(config: TrackingConfig) -> tuple[str | None, dict[str, str]]:
    """The suite's experiment id and, per analysis, its newest finished parent run id."""
    client = get_client(config)
    experiment = client.get_experiment_by_name(config.experiment)
    if experiment is None:
        return None, {}
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.{ROLE_TAG} = 'analysis' and attributes.status = 'FINISHED'",
        max_results=5000,
    )
    runs.sort(key=_last_logged, reverse=True)
    parents: dict[str, str] = {}
    for run in runs:
        parents.setdefault(run.data.tags.get("analysis", ""), run.info.run_id)
    return experiment.experiment_id, parents


def _last_logged(run) -> int:
    """When the run's content was last logged (its ``logged_at_ms`` tag, else its start time), in ms."""
    return int(run.data.tags.get(SEEN_TAG) or run.info.start_time or 0)


def deep_links(config: TrackingConfig, base: str = "http://127.0.0.1:5000") -> dict[str, str]:
    """Per analysis (paper order, then any other) the URL of its newest model runs; empty without a store."""
    experiment, parents = latest_parents(config)
    if experiment is None:
        return {}
    order = [a for a in ANALYSES if a in parents] + sorted(set(parents) - set(ANALYSES))
    return {
        name: runs_url(base, experiment, children_filter(parents[name]), "CHART" if name in CHART_ANALYSES else "TABLE")
        for name in order
    }
