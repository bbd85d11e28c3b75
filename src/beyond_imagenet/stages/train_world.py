"""Stage ``train_world`` (``train-world``): train the procedural world's models of params ``world`` from scratch.

Each model (``world.models.<name>``) is trained by training/world.py with the shared budget and the training
world of ``world.train`` plus its own overrides, then written to ``world.models_dir`` as ``<name>.pth`` (and, for
CLIP-style, ``<name>.json``, its open_clip config) with ``<name>.train.json``: the config, its hash, the model
id the pipeline loads it by, the held-out top-1, the time and the provenance. A model whose record holds the same
config hash is skipped, so a rerun trains only what changed; every model's config is checked before any training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from beyond_imagenet.base.config import Params
from beyond_imagenet.base.errors import ParamsError, UnknownNameError, UserError
from beyond_imagenet.base.files import atomic_write_json
from beyond_imagenet.base.hashing import config_hash
from beyond_imagenet.base.provenance import environment_record
from beyond_imagenet.base.world_config import WorldTrainingConfig
from beyond_imagenet.data.world import WorldConfig
from beyond_imagenet.data.world.suite import write_world_suite
from beyond_imagenet.stages.params import load_stage_params
from beyond_imagenet.training.world import (
    BUDGET_FIELDS,
    TrainConfig,
    config_record,
    held_out_top1,
    save_model,
    train,
)

WORLD_FIELDS = tuple(f.name for f in dataclasses.fields(WorldConfig))


def world_config(overrides: dict[str, Any], where: str) -> WorldConfig:
    """``WorldConfig`` with ``overrides`` (lists become tuples); a bad key or value names ``where`` and the fix."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    try:
        unknown = sorted(set(overrides) - set(WORLD_FIELDS))
        if unknown:
            raise UnknownNameError("world factor", unknown[0], WORLD_FIELDS)
        return WorldConfig(**values)
    except UserError as err:
        raise ParamsError(f"params {where}: {err}") from err
    except TypeError as err:  # e.g. a range given as one number
        raise ParamsError(f"params {where}: {err}; ranges are [low, high], names are lists") from err


def train_configs(config: WorldTrainingConfig) -> dict[str, TrainConfig]:
    """The training run of every model of ``world.models``, all checked (raises before any training)."""
    runs = {}
    for name, model in config.models.items():
        world = world_config({**config.train, **model.train}, f"world.models.{name}.train (with world.train)")
        budget = {key: getattr(config, key) for key in BUDGET_FIELDS}
        runs[name] = TrainConfig(model.architecture, model.objective, world=world, **budget)
    return runs


def record_path(folder: Path, name: str) -> Path:
    """``<models_dir>/<name>.train.json``."""
    return folder / f"{name}.train.json"


def trained_record(folder: Path, name: str, key: str) -> dict | None:
    """``name``'s training record when it and the weights exist and its config hash is ``key``, else None."""
    path = record_path(folder, name)
    if not path.is_file() or not (folder / f"{name}.pth").is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("config_hash") == key else None


def train_world(params: Params, names: list[str] | None = None, accelerator: str = "auto") -> dict[str, dict]:
    """Train (or skip, when up to date) each named model of ``params.world``; their training records."""
    runs = train_configs(params.world)
    for name in names or []:
        if name not in runs:
            raise UnknownNameError("world model", name, runs)
    folder = Path(params.world.models_dir)
    records = {}
    for name, run in runs.items():
        if names and name not in names:
            continue
        record = config_record(run)
        key = config_hash(record)
        existing = trained_record(folder, name, key)
        if existing is not None:
            print(f"world model {name}: up to date ({record_path(folder, name)})")
            records[name] = existing
            continue
        print(f"world model {name}: training {run.architecture} with {run.objective} ...", flush=True)
        start = time.perf_counter()
        model = train(run, accelerator=accelerator)
        seconds = time.perf_counter() - start
        model_id = save_model(model, run, folder, name)
        top1 = held_out_top1(model, run)
        records[name] = {
            "name": name,
            "model_id": model_id,
            "config": record,
            "config_hash": key,
            "train_seconds": round(seconds, 1),
            "images_per_second": round(run.n_train * run.epochs / seconds),
            "held_out_top1": round(100 * top1, 2),
            "provenance": environment_record(),
        }
        atomic_write_json(record_path(folder, name), records[name])
        print(f"world model {name}: {top1:.1%} held-out top-1, {seconds:.0f} s -> {model_id}")
    return records


def run_make_world_data(args: argparse.Namespace) -> None:
    """``beyond-imagenet make-world-data``: the world's test suite under ``world.data_dir`` (data/world/suite.py)."""
    params = load_stage_params(args.params)
    config = params.world
    train = world_config(config.train, "world.train")
    counts = write_world_suite(
        Path(config.data_dir), train, config.test_images, config.seed + 20_000, config.rare_fraction
    )
    print(f"world test suite in {config.data_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def run_train_world(args: argparse.Namespace) -> None:
    """``beyond-imagenet train-world [NAME ...]``: train the world's models of params (default: all)."""
    params = load_stage_params(args.params)
    if not params.world.models:
        raise UserError(f"params {args.params}: world.models is empty; nothing to train (see docs/world.md)")
    train_world(params, args.names, args.accelerator)
