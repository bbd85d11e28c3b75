"""The CLI's catalogue commands: models, dataset kinds, analyses and VTAB tasks, and the demo data generator."""

from __future__ import annotations

import argparse
from pathlib import Path

from beyond_imagenet.analyses.registry import ANALYSES
from beyond_imagenet.base.errors import DatasetLayoutError
from beyond_imagenet.data.demo.make import make_demo_data
from beyond_imagenet.data.kinds import DATASET_KINDS
from beyond_imagenet.data.vtab.layouts import check_task_on_disk, expected_layout
from beyond_imagenet.data.vtab.split_rules import split_sizes
from beyond_imagenet.data.vtab.tasks import get_preset
from beyond_imagenet.models.backends import generic_id_forms
from beyond_imagenet.models.catalogue import catalogue_table
from beyond_imagenet.stages.common import print_table


def run_list_models(args: argparse.Namespace) -> None:
    """``beyond-imagenet list-models``."""
    print_table(catalogue_table())
    forms = ", ".join(generic_id_forms())
    print(f"\nAlso the generic ids of every model library: {forms}.")


def run_list_datasets(args: argparse.Namespace) -> None:
    """``beyond-imagenet list-datasets``."""
    print_table(
        [{"kind": k.name, "label_space": k.label_space, "description": k.description} for k in DATASET_KINDS.values()]
    )


def run_list_analyses(args: argparse.Namespace) -> None:
    """``beyond-imagenet list-analyses``."""
    print_table(
        [{"analysis": a.name, "paper": a.paper_section, "description": a.description} for a in ANALYSES.values()]
    )


def run_make_demo_data(args: argparse.Namespace) -> None:
    """``beyond-imagenet make-demo-data``: the seeded offline demo in every dataset's real format."""
    for line in make_demo_data(Path(args.root), args.seed, args.images_per_class, args.val_only):
        print(line)


def run_vtab_tasks(args: argparse.Namespace) -> None:
    """``beyond-imagenet vtab-tasks``: the tasks of a preset, their splits, and (with ``--root``) what is on disk."""
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
                "manual": "MANUAL" if task.source.manual else "",
            }
        )
    print_table(rows)
    if not args.root:
        example = preset.tasks[0]
        shown = "; ".join(expected_layout(example, "<root>", args.layout))
        print(f"\nlayout {args.layout}, e.g. {example.name}: {shown}")
        return
    print(f"\non disk under {args.root} (layout {args.layout}):")
    for task in preset.tasks:
        try:
            check_task_on_disk(task, args.root, args.layout)
            print(f"  {task.name}: found")
        except DatasetLayoutError as err:
            print(f"  {task.name}: MISSING. {err}")
