"""The package's structure as tests: the layer contract, no layout branches, sizes, in-repo references.

docs/architecture.md states the rules; these tests fail when a change breaks one of them.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "beyond_imagenet"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50
# Declarative tables written as one function: the allowed exceptions to MAX_FUNCTION_LINES.
DECLARATIVE_TABLES = {("data/vtab/tasks.py", "_build_tasks")}
# Lazy project-internal imports that are allowed: the package version as a fallback when it is not installed.
ALLOWED_LAZY_IMPORTS = {("base/provenance.py", "beyond_imagenet")}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_import_linter_layer_contract_is_kept():
    """`lint-imports` on the project's contract (pyproject.toml): kept, with no ignored imports."""
    from importlinter import api

    config = api.read_configuration(str(REPO_ROOT / "pyproject.toml"))
    (contract,) = config["contracts_options"]
    assert contract["type"] == "layers" and not contract.get("ignore_imports")
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports; raise SystemExit(lint_imports())"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 kept, 0 broken" in result.stdout


def test_the_layer_contract_catches_an_upward_import():
    """The contract is not vacuous: a module of `data` importing `analyses` breaks it."""
    import grimp

    graph = grimp.build_graph("beyond_imagenet")
    graph.add_import(importer="beyond_imagenet.data.registry", imported="beyond_imagenet.analyses.registry")
    layers = ["beyond_imagenet.analyses", "beyond_imagenet.metrics", "beyond_imagenet.data"]
    assert graph.find_illegal_dependencies_for_layers(layers=layers)


def test_no_layout_string_branches():
    offenders = [
        f"{_relative(p)}:{n}"
        for p in _modules()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"layout\s*(==|!=)", line)
    ]
    assert not offenders


def test_no_module_over_400_lines():
    sizes = {_relative(p): len(p.read_text().splitlines()) for p in _modules()}
    assert not {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES}


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def test_no_function_over_50_lines_except_declarative_tables():
    long = {
        (_relative(p), name): n
        for p in _modules()
        for name, n in _functions(p)
        if n > MAX_FUNCTION_LINES and (_relative(p), name) not in DECLARATIVE_TABLES
    }
    assert not long


def test_project_imports_sit_at_module_top():
    lazy = set()
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("beyond_imagenet"):
                        lazy.add((_relative(path), inner.module))
    assert lazy <= ALLOWED_LAZY_IMPORTS


@pytest.mark.parametrize("document", ["protocol", "transfer", "architecture"])
def test_docstring_references_point_into_the_repository(document):
    """Every `docs/<name>.md §N` a module cites exists, with that section number."""
    doc = REPO_ROOT / "docs" / f"{document}.md"
    headings = {m.group(1) for m in re.finditer(r"^#+ (\d+(?:\.\d+)*)[. ]", doc.read_text(), re.MULTILINE)}
    cited = set()
    for path in _modules():
        for match in re.finditer(rf"docs/{document}\.md §(\d+(?:\.\d+)?)", path.read_text()):
            cited.add((_relative(path), match.group(1)))
    missing = {(m, s) for m, s in cited if s not in headings and s.split(".")[0] not in headings}
    assert not missing


def test_no_reference_to_documents_outside_the_repository():
    pattern = re.compile(r"\b(PROTOCOL|TRANSFER)(\.md)?\s*§|\b(PROTOCOL|TRANSFER|DESIGN)\.md\b")
    assert not [_relative(p) for p in _modules() if pattern.search(p.read_text())]
