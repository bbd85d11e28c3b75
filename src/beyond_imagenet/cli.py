"""Command line: the DVC stages and the catalogue helpers, each a thin call into ``beyond_imagenet.stages``.

beyond-imagenet list-models | list-datasets | list-analyses
beyond-imagenet make-demo-data          # seeded offline demo in every dataset's real format
beyond-imagenet verify-data             # stage `data`: validate layouts, write manifests
beyond-imagenet verify [NAME...]        # layout, counts, side files, decode every image
beyond-imagenet infer                   # stage `inference`: one cached pass per dataset
beyond-imagenet analyze                 # stage `analyze`: records, figures, metrics, MLflow runs
beyond-imagenet cka                     # stage `cka`: minibatch CKA from the models (Fig. 8)
beyond-imagenet analyze-cache DIR...    # analyses on caches written by another tool (docs/cache.md)
beyond-imagenet vtab-tasks              # the 19 VTAB tasks of a preset: splits, layout, download notes
beyond-imagenet vtab-features           # stage `vtab_features`: features per (model, image source, split)
beyond-imagenet probe [--models M ...]  # stage `probe`: tune + probe every task, Table 3 (`make probe MODEL=`)
beyond-imagenet results                 # stage `results`: tidy table, paired comparisons, rankings
beyond-imagenet report                  # stage `report`: side-by-side tables
beyond-imagenet fidelity --dataset D    # two inference settings (fp32 vs bf16, ...) on the same images
beyond-imagenet import-predictions FILE --format F --out DIR   # a cache from imagenet-x / model-vs-human CSV
beyond-imagenet export-predictions DIR --format F --out FILE   # imagenet-x / model-vs-human CSV, parquet
beyond-imagenet fetch-cue-conflict      # download and check the cue-conflict stimuli
beyond-imagenet fetch-weights           # prefetch pretrained weights into the Hugging Face cache

The command table below names, for each command, the stage module and function that runs it; a module is imported
only when its command runs, so ``--help`` and the listings do not load Lightning, MLflow or Optuna.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.progress import configure_logging, quiet_library_loggers
from beyond_imagenet.data.demo import DEMO_IMAGES_PER_CLASS, DEMO_ROOT, DEMO_SEED

MODELS = ("--models", {"nargs": "+", "help": "model ids (default: params.yaml models)"})
NO_MLFLOW = ("--no-mlflow", {"action": "store_true", "help": "write the files only, log nothing to MLflow"})
LAYOUT_HELP = "VTAB on-disk layout: tfds_parquet | wds | torchvision (data/vtab/layouts)"


@dataclass(frozen=True)
class Command:
    """One subcommand: the stage function that runs it (``module:function``), its help and its arguments."""

    target: str
    help: str
    params: bool = False  # takes --params
    arguments: tuple[tuple[str, dict], ...] = field(default_factory=tuple)


COMMANDS: dict[str, Command] = {
    "list-models": Command("listings:run_list_models", "show the model catalogue"),
    "list-datasets": Command("listings:run_list_datasets", "show the registered dataset kinds"),
    "list-analyses": Command("listings:run_list_analyses", "show the registered analyses"),
    "make-demo-data": Command(
        "listings:run_make_demo_data",
        "generate the seeded offline demo dataset",
        arguments=(
            ("--root", {"default": str(DEMO_ROOT)}),
            ("--seed", {"type": int, "default": DEMO_SEED}),
            ("--images-per-class", {"type": int, "default": DEMO_IMAGES_PER_CLASS}),
            ("--val-only", {"action": "store_true", "help": "only the ImageNet-val stand-in"}),
        ),
    ),
    "verify-data": Command(
        "verify:run_verify_data",
        "validate dataset layouts and write manifests",
        params=True,
        arguments=(("--out", {"help": "manifest folder (default: results_dir/outputs.manifests of params)"}),),
    ),
    "verify": Command(
        "verify:run_verify",
        "check datasets: layout, counts, side files, decodability",
        params=True,
        arguments=(
            ("datasets", {"nargs": "*", "help": "dataset names of params.yaml (default: all)"}),
            ("--no-decode", {"action": "store_true", "help": "skip decoding every image"}),
        ),
    ),
    "infer": Command(
        "infer:run_infer",
        "run the cached inference pass",
        params=True,
        arguments=(("--datasets", {"nargs": "+", "help": "subset of params datasets"}), MODELS),
    ),
    "analyze": Command(
        "analyze:run_analyze",
        "run analyses on the caches and log to MLflow",
        params=True,
        arguments=(("--analyses", {"nargs": "+", "help": "subset of analyses (default: all)"}), NO_MLFLOW),
    ),
    "cka": Command(
        "cka:run_cka",
        "minibatch CKA between layers and across models (Fig. 8); needs the models",
        params=True,
        arguments=(MODELS, NO_MLFLOW),
    ),
    "analyze-cache": Command(
        "tools:run_analyze_cache",
        "every analysis whose input contract the given caches meet (docs/cache.md); no params file",
        arguments=(
            ("cache_dirs", {"nargs": "+", "type": Path, "help": "cache folders, or folders holding them"}),
            ("--out", {"default": "results-byo", "help": "where records and figures go"}),
            ("--n-bins", {"type": int, "default": 15, "help": "calibration bins (default 15, §5)"}),
            ("--analyses", {"nargs": "+", "help": "only these analyses; each must be able to run"}),
            ("--imagenet-x-annotations", {"help": "ImageNet-X annotation folder (default: the imagenet-x package's)"}),
            (
                "--allow-partial-imagenet-x",
                {"action": "store_true", "help": "score ImageNet-X on val caches missing annotated images"},
            ),
            ("--real-labels", {"help": "ReaL labels real.json (default: the copy in the imagenet-x package)"}),
            ("--pug-class-map", {"help": "PUG's class_to_imagenet_idx.json (default: in the caches' dataset.root)"}),
        ),
    ),
    "vtab-tasks": Command(
        "listings:run_vtab_tasks",
        "list the VTAB tasks of a preset; with --root, check them on disk",
        arguments=(
            ("--preset", {"default": "clipbench19", "choices": ["clipbench19", "vtab19"]}),
            ("--root", {"help": "folder holding the VTAB copies"}),
            ("--layout", {"default": "tfds_parquet", "help": LAYOUT_HELP}),
        ),
    ),
    "vtab-features": Command(
        "vtab_features:run_vtab_features",
        "extract VTAB features (cached per model, source, split)",
        params=True,
        arguments=(MODELS,),
    ),
    "probe": Command(
        "probe:run_probe",
        "tune and fit the VTAB linear probes; Table 3 and Fig. 6 bottom",
        params=True,
        arguments=(
            MODELS,
            ("--require-features", {"action": "store_true", "help": "fail instead of extracting features (DVC)"}),
            NO_MLFLOW,
        ),
    ),
    "fidelity": Command(
        "fidelity:run_fidelity_stage",
        "compare two inference settings on the same images",
        params=True,
        arguments=(
            ("--dataset", {"required": True, "help": "a dataset name of params.yaml"}),
            MODELS,
            ("--a", {"default": "precision=fp32", "help": "reference side, e.g. precision=fp32"}),
            ("--b", {"default": "precision=bf16", "help": "compared side, e.g. precision=bf16,compile=true"}),
            ("--out", {"default": "results/fidelity", "help": "where the JSON report goes"}),
        ),
    ),
    "results": Command(
        "results:run_results",
        "tidy results table with intervals, paired comparisons and rankings",
        params=True,
        arguments=(NO_MLFLOW,),
    ),
    "side-study": Command(
        "side_study:run_side_study",
        "inference and analyses of the side studies of params (side_studies), each in results_dir/side_studies/NAME",
        params=True,
        arguments=(("names", {"nargs": "*", "help": "side study names (default: all)"}), NO_MLFLOW),
    ),
    "make-world-data": Command(
        "train_world:run_make_world_data",
        "write the procedural world's test suite (world.data_dir): val, v2, sketch, rendition, corruptions, sweeps",
        params=True,
    ),
    "train-world": Command(
        "train_world:run_train_world",
        "train the procedural world's models of params (world.models) from scratch; skips those up to date",
        params=True,
        arguments=(
            ("names", {"nargs": "*", "help": "world model names (default: all)"}),
            ("--accelerator", {"default": "auto", "help": "Lightning accelerator: auto, cpu, gpu"}),
        ),
    ),
    "report": Command("report:run_report", "write the side-by-side report", params=True, arguments=(NO_MLFLOW,)),
    "mlflow-links": Command(
        "mlflow_links:run_mlflow_links",
        "print the MLflow UI links that open each analysis' model runs",
        params=True,
        arguments=(
            ("--host", {"default": "127.0.0.1", "help": "host of the MLflow server (make mlflow-ui)"}),
            ("--port", {"type": int, "default": 5000, "help": "port of the MLflow server"}),
        ),
    ),
    "import-predictions": Command(
        "interchange:run_import_predictions",
        "a cache from an imagenet-x or model-vs-human predictions CSV (docs/interchange.md)",
        arguments=(
            ("file", {"type": Path, "help": "the CSV to import"}),
            ("--format", {"required": True, "help": "imagenet-x | model-vs-human"}),
            ("--out", {"required": True, "type": Path, "help": "the cache folder to write"}),
            ("--model-id", {"help": "default: the file's stem (imagenet-x) or its subj column (model-vs-human)"}),
            ("--family", {"default": "other", "help": "vit | convnet | other (default: other)"}),
            ("--paradigm", {"default": "supervised", "help": "supervised | clip (default: supervised)"}),
            ("--imagenet-x-annotations", {"help": "folder holding filename_label.csv (default: imagenet-x's)"}),
            ("--force", {"action": "store_true", "help": "replace a cache already in --out"}),
        ),
    ),
    "export-predictions": Command(
        "interchange:run_export_predictions",
        "a cache's predictions as an imagenet-x or model-vs-human CSV, or a parquet table (docs/interchange.md)",
        arguments=(
            ("cache_dir", {"type": Path, "help": "the cache folder"}),
            ("--format", {"required": True, "help": "imagenet-x | model-vs-human | parquet"}),
            ("--out", {"required": True, "type": Path, "help": "the file, or a folder for the format's own file name"}),
            ("--with-logits", {"action": "store_true", "help": "parquet: add each row's logits as a list column"}),
        ),
    ),
    "fetch-cue-conflict": Command(
        "tools:run_fetch_cue_conflict",
        "download and check the 1,280 cue-conflict stimuli",
        arguments=(
            ("--out", {"default": "data/cue-conflict", "help": "where the 16 class folders go"}),
            ("--archive", {"help": "a cue-conflict.tar.gz already downloaded (no network needed)"}),
        ),
    ),
    "fetch-weights": Command(
        "tools:run_fetch_weights", "download pretrained weights into the HF cache", params=True, arguments=(MODELS,)
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="beyond-imagenet", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=command.help, description=command.help)
        sub_parser.set_defaults(target=command.target)
        if command.params:
            sub_parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        for flag, options in command.arguments:
            sub_parser.add_argument(flag, **options)
    return parser


def _run(target: str, args: argparse.Namespace) -> None:
    """Import the stage module of ``target`` (``module:function``) and call the function with ``args``."""
    module, function = target.split(":")
    stage = importlib.import_module(f"beyond_imagenet.stages.{module}")
    quiet_library_loggers(args.verbose)  # the import may have loaded Lightning, which resets its loggers
    getattr(stage, function)(args)


def suggestion(argv: Sequence[str]) -> str | None:
    """A "did you mean ...?" for a first word that is not a command but close to one (a typo), else None."""
    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] in COMMANDS:
        return None
    close = difflib.get_close_matches(words[0], list(COMMANDS), n=1, cutoff=0.6)
    return f"unknown command {words[0]!r}: did you mean `beyond-imagenet {close[0]}`?" if close else None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command; a :class:`UserError` prints ``error: ...`` and returns 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    hint = suggestion(argv)
    if hint:
        print(f"error: {hint}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        _run(args.target, args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
