"""The VTAB layout registry (docs/vtab.md): every registered layout implements ``VtabLayout``, unknown names get
close matches, a module dropped into the layouts package is discovered, the per-layout answers the pipeline relies
on (cache names, split names, counts), and the import graph of ``data.vtab`` (no cycle, no upper layer)."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pickle
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from beyond_imagenet.base.errors import DatasetLayoutError, UnknownNameError, UserError
from beyond_imagenet.data.vtab import layouts as registry
from beyond_imagenet.data.vtab.layouts import LAYOUTS, check_task_on_disk, expected_layout, get_layout
from beyond_imagenet.data.vtab.layouts.base import VtabLayout
from beyond_imagenet.data.vtab.layouts.wds import mirror_name
from beyond_imagenet.data.vtab.tasks import PRESETS, get_task
from beyond_imagenet.data.vtab.writers import write_classnames, write_parquet_split, write_wds_split

PACKAGE = Path(registry.__file__).resolve().parents[1]  # src/beyond_imagenet/data/vtab
BUILT_IN = ("tfds_parquet", "wds", "torchvision")
MEMBERS = [m for m in VtabLayout.__dict__ if not m.startswith("_")] + list(VtabLayout.__annotations__)
ALL_TASKS = [t for p in PRESETS.values() for t in p.tasks]


# ------------------------------------------------------------------------------------------------ registry


def test_built_in_layouts_are_registered_in_module_order():
    assert list(LAYOUTS) == sorted(BUILT_IN)
    assert registry.DEFAULT_LAYOUT == "tfds_parquet"


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_every_layout_satisfies_the_protocol(name):
    layout = get_layout(name)
    assert layout is LAYOUTS[name] and layout.name == name
    assert isinstance(layout, VtabLayout)
    assert {"name", "uses_val_seed", "split_rows", "download_hint", "labels"} <= set(MEMBERS)
    for member in MEMBERS:
        assert hasattr(layout, member), member
        protocol_member = getattr(VtabLayout, member, None)
        if callable(protocol_member):  # same parameters, in the same order, with the same defaults
            wanted = list(inspect.signature(protocol_member).parameters.values())[1:]
            found = list(inspect.signature(getattr(layout, member)).parameters.values())
            assert [(p.name, p.default) for p in found] == [(p.name, p.default) for p in wanted], member
    assert isinstance(layout.uses_val_seed, bool)


def test_get_layout_unknown_names_close_matches():
    with pytest.raises(UnknownNameError) as info:
        get_layout("nope")
    assert "unknown VTAB layout 'nope'" in str(info.value)
    assert "tfds_parquet, torchvision, wds" in str(info.value)
    with pytest.raises(UnknownNameError, match="Did you mean 'torchvision'") as info:
        get_layout("torchvison")
    assert info.value.close_matches == ["torchvision"]
    assert get_layout.__module__ == registry.__name__


DROPPED_IN = '''
from beyond_imagenet.data.vtab.layouts.tfds_parquet import TfdsParquetLayout


class DroppedInLayout(TfdsParquetLayout):
    """A fourth layout: tfds_parquet files under another name."""

    name = "{name}"


LAYOUT = DroppedInLayout()
'''


def test_a_module_dropped_into_the_package_is_discovered(tmp_path):
    stem = f"zz_dropped_in_{uuid.uuid4().hex[:12]}"
    name = f"dropped_{stem[-12:]}"
    path = PACKAGE / "layouts" / f"{stem}.py"
    try:
        path.write_text(DROPPED_IN.format(name=name), encoding="utf-8")
        importlib.invalidate_caches()
        importlib.reload(registry)
        assert list(registry.LAYOUTS) == [*sorted(BUILT_IN), name]
        layout = registry.get_layout(name)
        assert isinstance(layout, VtabLayout) and type(layout).__module__ == f"{registry.__name__}.{stem}"
        with pytest.raises(DatasetLayoutError, match=f"in layout '{name}'"):
            registry.check_task_on_disk("dtd", tmp_path, name)
        write_parquet_split(tmp_path, "dtd", "train", [np.zeros((4, 4, 3), np.uint8)], [{"label": 1}])
        write_parquet_split(tmp_path, "dtd", "validation", [np.zeros((4, 4, 3), np.uint8)], [{"label": 2}])
        write_parquet_split(tmp_path, "dtd", "test", [np.zeros((4, 4, 3), np.uint8)], [{"label": 3}])
        assert registry.check_task_on_disk("dtd", tmp_path, name) == tmp_path / "dtd"
    finally:
        path.unlink(missing_ok=True)
        for cached in (PACKAGE / "layouts" / "__pycache__").glob(f"{stem}.*"):
            cached.unlink(missing_ok=True)
        sys.modules.pop(f"{registry.__name__}.{stem}", None)
        importlib.invalidate_caches()
        importlib.reload(registry)
    assert list(registry.LAYOUTS) == sorted(BUILT_IN)


def test_unknown_layout_in_the_on_disk_check_keeps_its_message(tmp_path):
    with pytest.raises(UnknownNameError):
        get_layout("lmdb")
    for call in (
        lambda: check_task_on_disk("dtd", tmp_path, "lmdb"),
        lambda: expected_layout(get_task("dtd"), ".", "lmdb"),
    ):
        with pytest.raises(
            UserError, match=r"unknown dataset layout 'lmdb'; use one of tfds_parquet, torchvision, wds"
        ):
            call()


# ------------------------------------------------------------------------------------- per-layout answers


@pytest.mark.parametrize("task", ALL_TASKS, ids=lambda t: t.name)
def test_what_each_layout_says_about_a_task(task):
    parquet, wds, tv = get_layout("tfds_parquet"), get_layout("wds"), get_layout("torchvision")
    root = Path("/data")
    assert (parquet.uses_val_seed, wds.uses_val_seed, tv.uses_val_seed) == (False, True, True)
    assert parquet.split_names(task) == tv.split_names(task) == task.source_splits()
    assert wds.split_names(task) == ("train", "test")
    assert parquet.source_name(task) == tv.source_name(task) == task.source.name
    assert (
        wds.source_name(task)
        == mirror_name(task)
        == ("wds_sun397" if task.name == "sun397" else f"wds_vtab-{task.name}")
    )
    assert parquet.base_dir(task, root) == root / task.source.name
    assert wds.base_dir(task, root) == root / mirror_name(task)
    assert tv.base_dir(task, root) == root
    for split in task.source_splits():
        assert parquet.expected_count(task, split) == task.source.split_sizes[split]
    assert wds.expected_count(task, "train") == task.expected_sizes["train"]
    assert wds.expected_count(task, "test") == task.expected_sizes["test"]
    assert parquet.unsupported(task) is None and wds.unsupported(task) is None
    reason = tv.unsupported(task)
    if reason is None:
        assert task.source.name in {
            "cifar10",
            "cifar100",
            "svhn_cropped",
            "dtd",
            "oxford_flowers102",
            "oxford_iiit_pet",
        }
        for split in task.source_splits():
            assert tv.expected_count(task, split) == task.source.split_sizes[split]
    else:
        assert f"VTAB task {task.name!r}" in reason and "has no torchvision layout" in reason
        assert tv.expected(task, root) == [reason]
        with pytest.raises(DatasetLayoutError, match="has no torchvision layout"):
            check_task_on_disk(task, root, "torchvision")
    for layout in (parquet, wds, tv):
        assert layout.download_hint(task).endswith(f" Source notes: {task.source.download}")


def _write_cifar10_test(root: Path, labels: list[int]) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    data = np.zeros((len(labels), 3072), dtype=np.uint8)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": data, "labels": labels}, protocol=2))


def test_read_split_cache_names_and_the_sample_protocol(tmp_path):
    task = get_task("cifar10")
    write_parquet_split(tmp_path, "cifar10", "test", [np.zeros((4, 4, 3), np.uint8)] * 2, [{"label": 4}] * 2)
    write_wds_split(tmp_path, mirror_name(task), "test", [np.zeros((4, 4, 3), np.uint8)] * 2, [5, 6])
    write_classnames(tmp_path, mirror_name(task), [str(i) for i in range(10)])
    _write_cifar10_test(tmp_path, [7, 8])
    expected = {
        "tfds_parquet": ("cifar10", "cifar10", [4, 4]),
        "wds": ("wds_vtab-cifar10", "wds_vtab-cifar10", [5, 6]),
        "torchvision": ("cifar10", "cifar10@torchvision", [7, 8]),
    }
    for name, (source, cache_name, labels) in expected.items():
        layout = get_layout(name)
        split = layout.read_split(task, tmp_path, "test")
        assert (split.name, split.layout, split.split, split.cache_name) == (source, name, "test", cache_name)
        assert layout.labels(task, split).tolist() == labels
        for sample in split.samples:
            assert sample.plain_file is None and sample.name == f"{sample.path}#{sample.sample_id}"
            image = sample.decode()
            assert image.mode == "RGB"


# -------------------------------------------------------------------------------------------- import graph


def _internal_imports(path: Path) -> set[str]:
    """Every ``beyond_imagenet`` module a file imports, at any depth (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("beyond_imagenet"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("beyond_imagenet")}
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parents[2]).with_suffix("").parts  # from src/
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_data_vtab_imports_only_lower_layers_and_has_no_cycle():
    graph = {_module_name(p): _internal_imports(p) for p in sorted(PACKAGE.rglob("*.py"))}
    allowed = ("beyond_imagenet.base.", "beyond_imagenet.data.decode", "beyond_imagenet.data.vtab")
    for module, imports in graph.items():
        assert all(i.startswith(allowed) for i in imports), (module, imports)
    # the layouts package imports its modules by discovery, not by name: no edge leads back into it
    assert all("beyond_imagenet.data.vtab.layouts" not in imports for imports in graph.values())
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module in done or module not in graph:
            return
        for target in graph[module]:
            visit(target, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_importing_data_vtab_loads_no_upper_layer():
    modules = sorted(_module_name(p) for p in PACKAGE.rglob("*.py"))
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('beyond_imagenet'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    upper = ("transfer", "inference", "analyses", "probe", "stages", "cli", "metrics", "records", "tracking", "report")
    assert not [m for m in loaded if m.split(".")[1:2] and m.split(".")[1] in upper]
    assert set(modules) <= set(loaded)
