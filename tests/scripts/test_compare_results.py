"""scripts/compare_results.py: equal folders compare equal, and any changed, missing or extra number is named."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from helpers import REPO_ROOT

spec = importlib.util.spec_from_file_location("compare_results", REPO_ROOT / "scripts" / "compare_results.py")
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)


def _write(root: Path, top1: float, extra: bool = False) -> Path:
    (root / "records" / "accuracy" / "val").mkdir(parents=True)
    record = {"analysis": "accuracy", "metrics": {"accuracy/val/top1": top1}, "provenance": {"git_sha": str(root)}}
    (root / "records" / "accuracy" / "val" / "m.json").write_text(json.dumps(record))
    metrics = {"m": {"accuracy/val/top1": top1, **({"accuracy/val/top5": 99.0} if extra else {})}}
    (root / "metrics.json").write_text(json.dumps(metrics))
    (root / "vtab" / "records" / "m").mkdir(parents=True)
    old_probe = {"task": "dtd", "top1": 50.0, "mean_per_class_recall": 49.0, "created_at": str(root)}
    (root / "vtab" / "records" / "m" / "dtd.json").write_text(json.dumps(old_probe))
    return root


def test_equal_folders_compare_equal_whatever_their_provenance(tmp_path, capsys):
    old, new = _write(tmp_path / "old", 81.25), _write(tmp_path / "new", 81.25)
    assert compare.main([str(old), str(new)]) == 0
    assert "identical: 4 numbers compared" in capsys.readouterr().out


def test_a_changed_or_extra_number_is_named(tmp_path, capsys):
    old, new = _write(tmp_path / "old", 81.25), _write(tmp_path / "new", 81.5, extra=True)
    assert compare.main([str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "differs: metrics.json:m.accuracy/val/top1: 81.25 -> 81.5" in out
    assert "only in new: metrics.json:m.accuracy/val/top5" in out
    assert compare.main([str(old), str(new), "--tolerance", "1"]) == 1  # the extra number still differs


def test_probe_records_of_both_formats_compare(tmp_path):
    old = _write(tmp_path / "old", 81.25)
    new = _write(tmp_path / "new", 81.25)
    record = {"analysis": "vtab_probe", "metrics": {"vtab/dtd/top1": 50.0, "vtab/dtd/mean_per_class_recall": 49.0}}
    (new / "vtab" / "records" / "m" / "dtd.json").write_text(json.dumps(record))
    assert compare.differences(compare.collect(old), compare.collect(new), 0.0) == []
