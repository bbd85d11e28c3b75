"""Command line: thin wrappers over library functions, one per DVC stage plus catalogue helpers.

beyond-imagenet list-models | list-datasets | list-analyses
beyond-imagenet make-demo-data          # seeded offline demo in the ImageNet-val format
beyond-imagenet verify-data             # stage `data`: validate layouts, write manifests
beyond-imagenet infer                   # stage `inference`: one cached pass per dataset
beyond-imagenet analyze                 # stage `analyze`: records, figures, metrics, MLflow runs
beyond-imagenet analyze-cache DIR...    # analyses on caches written by another tool (docs/cache.md)
beyond-imagenet vtab-tasks              # the 19 VTAB tasks of a preset: splits, layout, download notes
beyond-imagenet vtab-features           # stage `vtab_features`: features per (model, image source, split)
beyond-imagenet probe [--models M ...]  # stage `probe`: tune + probe every task, Table 3 (`make probe MODEL=`)
beyond-imagenet report                  # stage `report`: side-by-side tables
beyond-imagenet fidelity --dataset D    # two inference settings (fp32 vs bf16, ...) on the same images
beyond-imagenet fetch-weights           # prefetch pretrained weights into the Hugging Face cache
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from beyond_imagenet import _compat  # noqa: F401  (torchvision import shim, before timm/open_clip)
from beyond_imagenet.errors import UserError

DEMO_ROOT = Path("data/demo")
DEMO_SEED = 20240721  # fixed: data.dvc records the bytes this seed produces
DEMO_CLASS_INDICES = tuple(range(0, 1000, 100))  # 10 ImageNet classes spread over the hierarchy
DEMO_IMAGES_PER_CLASS = 40


def _print_table(rows: list[dict[str, str]]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for row in rows:
        print("  ".join(str(row[k]).ljust(widths[k]) for k in keys))


def cmd_list_models(args: argparse.Namespace) -> None:
    from beyond_imagenet.models.catalogue import catalogue_table

    _print_table(catalogue_table())
    print("\nAlso: timm:<name>[.<tag>] for any timm model, open_clip:<arch>@<tag> for any OpenCLIP model.")


def cmd_list_datasets(args: argparse.Namespace) -> None:
    from beyond_imagenet.data.registry import DATASET_KINDS

    _print_table(
        [{"kind": k.name, "label_space": k.label_space, "description": k.description} for k in DATASET_KINDS.values()]
    )


def cmd_list_analyses(args: argparse.Namespace) -> None:
    from beyond_imagenet.analyses.registry import ANALYSES

    _print_table(
        [{"analysis": a.name, "paper": a.paper_section, "description": a.description} for a in ANALYSES.values()]
    )


def cmd_make_demo_data(args: argparse.Namespace) -> None:
    from beyond_imagenet.data.demo import generate_demo_split
    from beyond_imagenet.data.label_space import imagenet_wnids

    wnids = [imagenet_wnids()[i] for i in DEMO_CLASS_INDICES]
    root = Path(args.root)
    paths = generate_demo_split(root / "val", wnids, args.images_per_class, args.seed)
    print(f"demo data: {len(paths)} images in {len(wnids)} ImageNet classes under {root / 'val'}")
    if not args.val_only:
        _make_demo_stand_ins(root, wnids, {p.name: imagenet_wnids().index(p.parent.name) for p in paths}, args.seed)


def _make_demo_stand_ins(root: Path, wnids: list[str], val_files: dict[str, int], seed: int) -> None:
    """Stand-ins for every test set of the paper, in their real formats (data/demo_suite.py)."""
    import timm.data

    from beyond_imagenet.analyses.imagenet_x import FACTORS
    from beyond_imagenet.analyses.pug import PUG_FACTORS
    from beyond_imagenet.analyses.shape_bias import CATEGORIES
    from beyond_imagenet.data import demo_suite as suite
    from beyond_imagenet.data.registry import IMAGENET_C_CORRUPTIONS, IMAGENET_C_SEVERITIES

    info = Path(timm.data.__file__).parent / "_info"
    counts = {
        "imagenet_v2": suite.write_class_folders(
            root / "imagenet_v2", [str(i) for i in DEMO_CLASS_INDICES], 8, seed + 1, "JPEG", "jpeg"
        ),
        "imagenet_sketch": suite.write_class_folders(
            root / "imagenet_sketch", wnids, 8, seed + 2, "JPEG", "JPEG", suite.sketchify
        ),
    }
    for name, offset in (("imagenet_a", 3), ("imagenet_r", 4)):
        official = (info / f"{name}_synsets.txt").read_text().split()[::20][:10]
        counts[name] = suite.write_class_folders(root / name, official, 8, seed + offset, "JPEG", "jpg")
    counts["imagenet_c"] = suite.write_imagenet_c(
        root / "imagenet_c", wnids, 1, seed + 5, IMAGENET_C_CORRUPTIONS, IMAGENET_C_SEVERITIES
    )
    counts["imagenet_hard"] = suite.write_imagenet_hard(root / "imagenet_hard", list(DEMO_CLASS_INDICES), 4, seed + 10)
    counts["pug_imagenet"] = suite.write_pug(root / "pug_imagenet", PUG_FACTORS, 3, seed + 6)
    counts["cue_conflict"] = suite.write_cue_conflict(root / "cue_conflict", list(CATEGORIES), 5, seed + 7)
    suite.write_real_labels(root / "real.json", list(val_files), val_files, seed + 8)
    suite.write_imagenet_x(root / "imagenet_x", val_files, FACTORS, seed + 9)
    shown = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"demo stand-ins (not real images): {shown}; real.json and imagenet_x/ annotations")
    from beyond_imagenet.data.demo_vtab import make_demo_vtab

    vtab = make_demo_vtab(root / "vtab", seed + 10)
    total = sum(sum(splits.values()) for splits in vtab.values())
    print(f"VTAB stand-ins: {len(vtab)} image sources, {total} images (tfds-parquet layout) under {root / 'vtab'}")


def cmd_verify_data(args: argparse.Namespace) -> None:
    from beyond_imagenet.config import load_params
    from beyond_imagenet.data.registry import resolve_datasets
    from beyond_imagenet.io_utils import atomic_write_json

    params = load_params(args.params)
    for name, config in params.datasets.items():
        manifests = [dataset.manifest() for dataset in resolve_datasets(name, config)]
        atomic_write_json(Path(args.out) / f"{name}.json", manifests[0] if len(manifests) == 1 else manifests)
        n_images = sum(m["n_images"] for m in manifests)
        variants = f" in {len(manifests)} variants" if len(manifests) > 1 else ""
        print(f"{name}: {n_images} images{variants}, {manifests[0]['n_classes']} classes ok")


def cmd_verify(args: argparse.Namespace) -> None:
    from beyond_imagenet.config import load_params
    from beyond_imagenet.data.registry import resolve_datasets
    from beyond_imagenet.data.verify import verify_datasets
    from beyond_imagenet.errors import UnknownNameError
    from beyond_imagenet.inference.loader import auto_num_workers

    params = load_params(args.params)
    failed = False
    for name in args.datasets or list(params.datasets):
        if name not in params.datasets:
            raise UnknownNameError("dataset", name, params.datasets)
        datasets = resolve_datasets(name, params.datasets[name])  # layout, counts, side files
        report = verify_datasets(datasets, auto_num_workers(), decode=not args.no_decode)
        checked = "layout and counts" + ("" if args.no_decode else ", every image decoded")
        print(f"{name}: {report.n_images} images in {len(datasets)} set(s); {checked}")
        for path, reason in report.failures:
            print(f"  cannot decode {path}: {reason}")
        failed = failed or not report.ok
    if failed:
        raise UserError("some images do not decode (listed above); replace them or set inference.bad_images: skip")


def cmd_infer(args: argparse.Namespace) -> None:
    from beyond_imagenet.config import load_params
    from beyond_imagenet.inference.run import run_inference

    params = load_params(args.params)
    jobs = run_inference(params, args.datasets, args.models)
    if params.analyses.invariance.dataset and not args.datasets:
        from beyond_imagenet.inference.sweeps import run_invariance_sweeps

        jobs += run_invariance_sweeps(params, args.models)  # §9: every sweep point is a cache variant
    for job in jobs:
        print(f"{job.dataset.key} / {job.spec.id}: {job.path}")


def _print_record(record) -> None:
    prefix = f"{record.analysis}/{record.dataset}/" if record.analysis in ("accuracy", "calibration") else ""
    shown = ", ".join(
        f"{k.removeprefix(prefix).removeprefix(record.analysis + '/')}={v:.4g}" for k, v in record.metrics.items()
    )
    print(f"{record.analysis:12s} {record.dataset:14s} {record.model_id:28s} {shown}")


def cmd_analyze(args: argparse.Namespace) -> None:
    from beyond_imagenet.analyses.registry import resolve_analyses, run_analyses
    from beyond_imagenet.config import load_params

    params = load_params(args.params)
    names = args.analyses
    if names:
        resolve_analyses(names)  # unknown names fail before any cache is read
    records = run_analyses(params, names)
    for record in records:
        _print_record(record)
    if not args.no_mlflow:
        from beyond_imagenet.tracking.mlflow_logger import log_records

        run_ids = log_records(records, params.tracking, stage="analyze")
        print(f"logged {len(run_ids)} MLflow runs to {params.tracking.tracking_uri} (`make mlflow-ui` to browse)")


def cmd_cka(args: argparse.Namespace) -> None:
    from beyond_imagenet.analyses.cka_run import cka_results_dir, run_cka
    from beyond_imagenet.config import load_params

    params = load_params(args.params)
    records = run_cka(params, args.models)
    for record in records:
        _print_record(record)
    print(f"records, CKA matrices (.npz) and Fig. 8 under {cka_results_dir(params)}")
    if not args.no_mlflow:
        from beyond_imagenet.tracking.mlflow_logger import log_records

        run_ids = log_records(records, params.tracking, stage="cka")
        print(f"logged {len(run_ids)} MLflow runs to {params.tracking.tracking_uri} (`make mlflow-ui` to browse)")


def cmd_vtab_tasks(args: argparse.Namespace) -> None:
    from beyond_imagenet.transfer.tasks import expected_layout, get_preset, split_sizes

    preset = get_preset(args.preset)
    print(f"{preset.name}: {preset.description}")
    rows = []
    for task in preset.tasks:
        sizes = split_sizes(task)
        rows.append(
            {
                "task": task.name,
                "group": task.group,
                "classes": str(task.num_classes),
                "train/val/test": f"{sizes['train']}/{sizes['val']}/{sizes['test']}",
                "source": task.source.name,
                "manual": "MANUAL" if task.manual_download else "",
            }
        )
    _print_table(rows)
    if args.root:
        from beyond_imagenet.errors import DatasetLayoutError
        from beyond_imagenet.transfer.tasks import check_task_on_disk

        print(f"\non disk under {args.root} (layout {args.layout}):")
        for task in preset.tasks:
            try:
                check_task_on_disk(task, args.root, args.layout)
                print(f"  {task.name}: found")
            except DatasetLayoutError as err:
                print(f"  {task.name}: MISSING. {err}")
    else:
        example = preset.tasks[0]
        print(
            f"\nlayout {args.layout}, e.g. {example.name}: {'; '.join(expected_layout(example, '<root>', args.layout))}"
        )


def _transfer_plan(args: argparse.Namespace):
    from beyond_imagenet.config import load_params
    from beyond_imagenet.transfer.run import plan_transfer, print_not_run

    params = load_params(args.params)
    if params.transfer.root is None:
        from beyond_imagenet.transfer.run import SKIPPED_NOTE, write_skipped_outputs

        write_skipped_outputs(params)
        print(SKIPPED_NOTE + " Set it to the folder of your VTAB copies (`beyond-imagenet vtab-tasks`).")
        return params, None
    plan = plan_transfer(params)
    print_not_run(plan)
    if not plan.tasks:
        raise UserError(f"no VTAB task of {plan.preset.name} can run: every one is missing (listed above)")
    return params, plan


def cmd_vtab_features(args: argparse.Namespace) -> None:
    from beyond_imagenet.transfer.run import extract_features

    params, plan = _transfer_plan(args)
    if plan is None:
        return
    models = args.models or params.models
    jobs = extract_features(params, plan, models)
    for model_id, by_split in jobs.items():
        for (source, split), job in by_split.items():
            print(f"{model_id} / {source}/{split}: {job.path}")


def cmd_probe(args: argparse.Namespace) -> None:
    from beyond_imagenet.models.catalogue import resolve_model
    from beyond_imagenet.transfer.run import (
        aggregate,
        collect_records,
        extract_features,
        probe_models,
        require_features,
    )

    params, plan = _transfer_plan(args)
    if plan is None:
        return
    models = args.models or params.models
    features = (
        require_features(params, plan, models) if args.require_features else extract_features(params, plan, models)
    )
    factory = None
    if not args.no_mlflow:
        from beyond_imagenet.tracking.probe_runs import tracker_factory

        factory = tracker_factory(params.tracking)
    probe_models(params, plan, features, models, factory)
    shown = list(dict.fromkeys([*models, *params.models]))  # a one-model run still shows the others' results
    result = aggregate(params, plan, collect_records(params, plan, shown), shown)
    print(result["markdown"].read_text())
    print(f"Table 3: {result['markdown']}; Fig. 6 bottom: {result['figure']}")
    if not args.no_mlflow:
        from beyond_imagenet.tracking.probe_runs import log_vtab_summary

        specs = [resolve_model(m) for m in models]
        run_ids = log_vtab_summary(params.tracking, result["summary"], [result["markdown"], result["figure"]], specs)
        print(f"logged {len(run_ids)} MLflow summary runs to {params.tracking.tracking_uri} (`make mlflow-ui`)")


def cmd_fidelity(args: argparse.Namespace) -> None:
    from beyond_imagenet.config import load_params
    from beyond_imagenet.inference.fidelity import parse_side, run_fidelity, side_label
    from beyond_imagenet.io_utils import atomic_write_json

    params = load_params(args.params)
    side_a, side_b = parse_side(args.a), parse_side(args.b)
    report = run_fidelity(params, args.dataset, args.models or params.models, side_a, side_b)
    out = Path(args.out) / f"{args.dataset}__{side_label(side_a)}__vs__{side_label(side_b)}.json"
    atomic_write_json(out, report)
    rows = [
        {
            "dataset/model": key,
            "top1 agreement %": f"{r['top1_agreement']:.2f}",
            "top1 a": f"{r['top1_a']:.2f}",
            "top1 b": f"{r['top1_b']:.2f}",
            "delta top1": f"{r['delta_top1']:+.2f}",
            "ECE a": f"{r['ece_a']:.4f}",
            "ECE b": f"{r['ece_b']:.4f}",
            "delta ECE": f"{r['delta_ece']:+.4f}",
            "max |logit diff|": f"{r['max_abs_logit_diff']:.3g}",
        }
        for key, r in report["results"].items()
    ]
    print(f"a = {args.a}   b = {args.b}")
    _print_table(rows)
    print(f"written: {out}")


def cmd_analyze_cache(args: argparse.Namespace) -> None:
    from beyond_imagenet.analyses.accuracy import analyse_accuracy
    from beyond_imagenet.analyses.calibration import analyse_calibration, save_calibration_figures
    from beyond_imagenet.analyses.registry import record_path
    from beyond_imagenet.inference.cache import load_cache
    from beyond_imagenet.io_utils import atomic_write_json

    caches = [load_cache(path) for path in args.cache_dirs]
    records = [analyse_accuracy(cache) for cache in caches]
    for dataset in dict.fromkeys(c.dataset for c in caches):
        results = [analyse_calibration(c, args.n_bins) for c in caches if c.dataset == dataset]
        batch = [record for record, _ in results]
        save_calibration_figures([panel for _, panel in results], batch, dataset, args.out)
        records += batch
    for record in records:
        atomic_write_json(record_path(args.out, record), record.as_dict())
        _print_record(record)


def cmd_report(args: argparse.Namespace) -> None:
    from beyond_imagenet.analyses.cka_run import cka_results_dir
    from beyond_imagenet.analyses.registry import load_records
    from beyond_imagenet.config import load_params
    from beyond_imagenet.report import vtab_section, write_report

    params = load_params(args.params)
    records = load_records(params.results_dir) + load_records(cka_results_dir(params))
    if not records:
        raise UserError(f"no result records under {params.results_dir}/records; run `dvc repro analyze` first")
    table3_file = Path(params.results_dir) / "vtab" / "table3.md"
    vtab = vtab_section(table3_file.read_text() if table3_file.exists() else None)
    paths = write_report(records, params.reports_dir, [vtab])
    print("\n".join(str(p) for p in paths))
    if not args.no_mlflow:
        from beyond_imagenet.provenance import git_state
        from beyond_imagenet.tracking.mlflow_logger import log_report

        log_report(paths, params.tracking, {"git_sha": str(git_state()["git_sha"]), "dvc_stage": "report"})


def cmd_fetch_cue_conflict(args: argparse.Namespace) -> None:
    from beyond_imagenet.data.fetch import fetch_cue_conflict

    out = fetch_cue_conflict(Path(args.out), archive=Path(args.archive) if args.archive else None)
    print(f"cue-conflict stimuli checked and installed in {out} (source and sha256 in {out / 'SOURCE.json'})")


def cmd_fetch_weights(args: argparse.Namespace) -> None:
    from beyond_imagenet.config import load_params
    from beyond_imagenet.models.backbone import build_backbone
    from beyond_imagenet.models.catalogue import PAPER_MODELS, resolve_model
    from beyond_imagenet.models.weights import hub_offline, locate_weights

    if args.models:
        ids = args.models
    elif Path(args.params).exists():
        ids = load_params(args.params).models
    else:
        ids = list(PAPER_MODELS)
    specs = [resolve_model(m) for m in ids]
    if hub_offline():
        raise UserError("HF_HUB_OFFLINE is set; unset it on a machine with network to fetch weights")
    for spec in specs:
        location = locate_weights(spec)
        if location is None:
            print(f"{spec.id}: random init, nothing to fetch")
            continue
        print(f"{spec.id}: fetching {spec.weights_id} from {location.describe()}", flush=True)
        build_backbone(spec)  # the libraries download into the Hugging Face cache
    print("done; the weights are in the Hugging Face cache (HF_HOME); copy it to offline machines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beyond-imagenet", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help_text: str, params: bool = False) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(func=func)
        if params:
            command.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        return command

    add("list-models", cmd_list_models, "show the model catalogue")
    add("list-datasets", cmd_list_datasets, "show the registered dataset kinds")
    add("list-analyses", cmd_list_analyses, "show the registered analyses")
    demo = add("make-demo-data", cmd_make_demo_data, "generate the seeded offline demo dataset")
    demo.add_argument("--root", default=str(DEMO_ROOT))
    demo.add_argument("--seed", type=int, default=DEMO_SEED)
    demo.add_argument("--images-per-class", type=int, default=DEMO_IMAGES_PER_CLASS)
    demo.add_argument("--val-only", action="store_true", help="only the ImageNet-val stand-in")
    verify = add("verify-data", cmd_verify_data, "validate dataset layouts and write manifests", params=True)
    verify.add_argument("--out", default="results/manifests")
    check = add("verify", cmd_verify, "check datasets: layout, counts, side files, decodability", params=True)
    check.add_argument("datasets", nargs="*", help="dataset names of params.yaml (default: all)")
    check.add_argument("--no-decode", action="store_true", help="skip decoding every image")
    infer = add("infer", cmd_infer, "run the cached inference pass", params=True)
    infer.add_argument("--datasets", nargs="+", help="subset of params datasets")
    infer.add_argument("--models", nargs="+", help="subset of (or other) model ids")
    analyze = add("analyze", cmd_analyze, "run analyses on the caches and log to MLflow", params=True)
    analyze.add_argument("--analyses", nargs="+", help="subset of analyses (default: all)")
    analyze.add_argument("--no-mlflow", action="store_true", help="write records and metrics only")
    cka = add("cka", cmd_cka, "minibatch CKA between layers and across models (Fig. 8); needs the models", params=True)
    cka.add_argument("--models", nargs="+", help="subset of (or other) model ids")
    cka.add_argument("--no-mlflow", action="store_true", help="write records and figures only")
    from_cache = add("analyze-cache", cmd_analyze_cache, "accuracy and calibration from cache directories")
    from_cache.add_argument("cache_dirs", nargs="+", type=Path)
    from_cache.add_argument("--out", default="results-byo", help="where records and figures go")
    from_cache.add_argument("--n-bins", type=int, default=15)
    vtab = add("vtab-tasks", cmd_vtab_tasks, "list the VTAB tasks of a preset; with --root, check them on disk")
    vtab.add_argument("--preset", default="clipbench19", choices=["clipbench19", "vtab19"])
    vtab.add_argument("--root", help="folder holding the VTAB copies")
    vtab.add_argument("--layout", default="tfds_parquet", choices=["tfds_parquet", "wds", "torchvision"])
    features = add("vtab-features", cmd_vtab_features, "extract VTAB features (cached per model, source, split)", True)
    features.add_argument("--models", nargs="+", help="subset of (or other) model ids")
    probe = add("probe", cmd_probe, "tune and fit the VTAB linear probes; Table 3 and Fig. 6 bottom", params=True)
    probe.add_argument("--models", nargs="+", help="model ids (default: params.yaml models)")
    probe.add_argument("--require-features", action="store_true", help="fail instead of extracting features (DVC)")
    probe.add_argument("--no-mlflow", action="store_true", help="write records, Table 3 and the figure only")
    fidelity = add("fidelity", cmd_fidelity, "compare two inference settings on the same images", params=True)
    fidelity.add_argument("--dataset", required=True, help="a dataset name of params.yaml")
    fidelity.add_argument("--models", nargs="+", help="model ids (default: params.yaml models)")
    fidelity.add_argument("--a", default="precision=fp32", help="reference side, e.g. precision=fp32")
    fidelity.add_argument("--b", default="precision=bf16", help="compared side, e.g. precision=bf16,compile=true")
    fidelity.add_argument("--out", default="results/fidelity", help="where the JSON report goes")
    report = add("report", cmd_report, "write the side-by-side report", params=True)
    report.add_argument("--no-mlflow", action="store_true")
    cue = add("fetch-cue-conflict", cmd_fetch_cue_conflict, "download and check the 1,280 cue-conflict stimuli")
    cue.add_argument("--out", default="data/cue-conflict", help="where the 16 class folders go")
    cue.add_argument("--archive", help="a cue-conflict.tar.gz already downloaded (no network needed)")
    fetch = add("fetch-weights", cmd_fetch_weights, "download pretrained weights into the HF cache", params=True)
    fetch.add_argument("--models", nargs="+", help="model ids (default: params.yaml models)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("beyond_imagenet").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    for noisy in ("lightning.pytorch", "lightning.fabric"):  # they add their own handlers
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        args.func(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
