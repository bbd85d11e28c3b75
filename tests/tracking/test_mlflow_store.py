"""The MLflow store under concurrency: two processes on a new SQLite store, and retries while it is locked."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from beyond_imagenet.base.config import TrackingConfig
from beyond_imagenet.base.errors import UserError
from beyond_imagenet.tracking import store
from beyond_imagenet.tracking.store import get_client, is_locked_error, retrying

TRIALS = 3

# One process: for each fresh store root, wait until its partner is ready too, then log one record there.
WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from beyond_imagenet.base.config import TrackingConfig
    from beyond_imagenet.base.record import ResultRecord
    from beyond_imagenet.tracking.mlflow_logger import log_records

    worker, roots = sys.argv[1], [Path(r) for r in sys.argv[2:]]
    try:
        for root in roots:
            (root / f"ready-{worker}").touch()
            deadline = time.time() + 60
            while len(list(root.glob("ready-*"))) < 2 and time.time() < deadline:
                time.sleep(0.005)
            config = TrackingConfig(experiment="t", tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db",
                                    artifact_location=str(root / "mlruns" / "artifacts"))
            record = ResultRecord(f"analysis_{worker}", f"model_{worker}", "val", {"accuracy/val/top1": 1.0})
            assert len(log_records([record], config)) == 2  # a parent and a model run
    finally:  # a crash must not keep the partner waiting
        for root in roots:
            (root / f"ready-{worker}").touch()
    """
)


def config_in(root: Path) -> TrackingConfig:
    return TrackingConfig(
        experiment="t", tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db", artifact_location=str(root / "artifacts")
    )


def test_two_processes_create_and_log_to_a_new_sqlite_store(tmp_path):
    roots = [tmp_path / f"trial{i}" for i in range(TRIALS)]
    for root in roots:
        root.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [
        subprocess.Popen([sys.executable, str(script), str(w), *map(str, roots)], stderr=subprocess.PIPE, text=True)
        for w in (1, 2)
    ]
    errors = [w.communicate(timeout=300)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(e[-3000:] for e in errors)
    for root in roots:  # the store is whole: one experiment holding both processes' runs, and it takes more
        client = get_client(config_in(root))
        experiment = client.get_experiment_by_name("t")
        runs = client.search_runs([experiment.experiment_id], max_results=100)
        assert sorted(r.info.run_name for r in runs if r.data.tags["run_role"] == "analysis") == [
            "analysis_1",
            "analysis_2",
        ]
        assert len(runs) == 4
        assert client.get_run(client.create_run(experiment.experiment_id).info.run_id).info.status == "RUNNING"


class Locked:
    """A store call that finds the database locked ``times`` times, then answers."""

    def __init__(self, times: int):
        self.times, self.calls = times, 0

    def __call__(self, value: int) -> int:
        import sqlalchemy.exc

        self.calls += 1
        if self.calls <= self.times:
            raise RuntimeError("store error") from sqlalchemy.exc.OperationalError(
                "INSERT", {}, Exception("database is locked")
            )
        return value * 2


def test_a_locked_store_is_retried_then_answers(monkeypatch):
    monkeypatch.setattr(store, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))
    call = Locked(times=3)
    assert retrying(call, "create_run", config_in(Path("/x")))(21) == 42
    assert call.calls == 4


def test_a_store_that_stays_locked_fails_with_the_store_named(monkeypatch):
    monkeypatch.setattr(store, "RETRY_DELAYS_S", (0.0, 0.0))
    call = Locked(times=10)
    with pytest.raises(UserError, match=r"MLflow store /x/mlruns/mlflow\.db stayed locked .*\(create_run\)"):
        retrying(call, "create_run", config_in(Path("/x")))(1)
    assert call.calls == 3


def test_other_store_errors_are_not_retried(monkeypatch):
    def broken(value: int) -> int:
        broken.calls += 1
        raise ValueError("no such experiment")

    broken.calls = 0
    monkeypatch.setattr(store, "RETRY_DELAYS_S", (0.0, 0.0))
    with pytest.raises(ValueError, match="no such experiment"):
        retrying(broken, "get_run", config_in(Path("/x")))(1)
    assert broken.calls == 1
    assert not is_locked_error(ValueError("database is fine")) and is_locked_error(Exception("database is locked"))


def test_a_store_that_cannot_be_opened_is_named_with_the_fix(tmp_path):
    config = config_in(tmp_path)
    database = tmp_path / "mlruns" / "mlflow.db"
    database.parent.mkdir()
    database.write_bytes(b"not a database" * 100)
    with pytest.raises(UserError, match=rf"could not open the MLflow store {database} .*move it away and rerun"):
        get_client(config)
