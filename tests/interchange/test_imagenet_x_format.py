"""imagenet-x's predictions CSV: import, export, both round trips, and the imagenet-x package as the reference."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json

import numpy as np
import pandas as pd
import pytest

from beyond_imagenet.base.errors import UnknownNameError, UserError
from beyond_imagenet.cli import main
from beyond_imagenet.data import imagenet_x as ix_data
from beyond_imagenet.inference.cache import load_cache
from beyond_imagenet.inference.interchange import ImportOptions, export_predictions, import_predictions
from beyond_imagenet.metrics.imagenet_x import predictions_from_logits

HAS_PACKAGE = importlib.util.find_spec("imagenet_x") is not None
needs_package = pytest.mark.skipif(not HAS_PACKAGE, reason="imagenet-x==0.0.7 is not installed (val labels)")
HEADER = "file_name,predicted_class,predicted_probability"


@pytest.fixture(scope="module")
def val_labels() -> pd.Series:
    return ix_data.load_val_labels()


def canonical_csv(tmp_path, names, classes, probabilities, stem="my_model"):
    """A CSV as this project writes it: 10 decimals, shortest form, '\\n' line ends."""
    rows = [f"{n},{c},{float(f'{p:.10f}')!r}" for n, c, p in zip(names, classes, probabilities, strict=True)]
    path = tmp_path / f"{stem}.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def random_predictions(rng, labels: pd.Series, n: int):
    """The first ``n`` val images in filename_label.csv order, 70% right, probabilities in (1/1000, 1]."""
    names = labels.index[:n].tolist()
    classes = np.where(rng.random(n) < 0.7, labels.to_numpy()[:n], rng.integers(0, 1000, n))
    probabilities = rng.uniform(0.0011, 1.0, n)
    probabilities[:3] = [1.0, 0.5, 0.0010000001]
    return names, classes, probabilities


@needs_package
def test_import_then_export_gives_the_same_csv(tmp_path, val_labels):
    names, classes, probabilities = random_predictions(np.random.default_rng(1), val_labels, 400)
    classes[5], probabilities[5] = -1, 0.25  # a tied top-1
    source = canonical_csv(tmp_path, names, classes, probabilities)
    cache_dir = import_predictions(source, "imagenet-x", tmp_path / "cache")
    exported = export_predictions(cache_dir, "imagenet-x", tmp_path / "out.csv")
    assert exported.read_bytes() == source.read_bytes()
    cache = load_cache(cache_dir)
    assert cache.model_id == "my_model"  # the file's stem, as the package names models
    assert cache.sample_ids == names and (cache.targets == val_labels.to_numpy()[:400]).all()
    assert cache.features.shape == (400, 0)
    assert set(cache.meta["checksums"]) == {"logits.npy", "features.npy", "targets.npy", "sample_ids.json"}
    mark = cache.meta["interchange"]
    assert mark["format"] == "imagenet-x" and mark["valid"] == ["top-1 class", "top-1 probability"]
    assert mark["source_file"] == str(source.resolve())
    read_back = pd.read_csv(source)["predicted_probability"].to_numpy()
    rebuilt = predictions_from_logits(cache.logits, cache.sample_ids)
    np.testing.assert_allclose(rebuilt["predicted_probability"], read_back, rtol=1e-12, atol=0)


@needs_package
def test_export_then_import_gives_the_same_top1_and_probabilities(tmp_path, make_cache, val_labels):
    rng = np.random.default_rng(2)
    names = val_labels.index[:300].tolist()
    logits = rng.standard_normal((300, 1000)).astype(np.float32) * 3
    original = make_cache("orig", logits, val_labels.to_numpy()[:300], names, {"name": "imagenet_val"})
    exported = export_predictions(original, "imagenet-x", tmp_path)  # a folder: the package's <model>.csv
    assert exported == tmp_path / "my_model.csv" and exported.read_text().startswith(HEADER + "\n")
    reimported = load_cache(import_predictions(exported, "imagenet-x", tmp_path / "again"))
    before = predictions_from_logits(logits, names)
    after = predictions_from_logits(reimported.logits, reimported.sample_ids)
    assert (after["predicted_class"] == before["predicted_class"]).all()
    np.testing.assert_allclose(after["predicted_probability"], before["predicted_probability"], rtol=0, atol=5e-11)
    assert export_predictions(reimported.path, "imagenet-x", tmp_path / "twice.csv").read_bytes() == (
        exported.read_bytes()
    )


@pytest.mark.slow
@needs_package
def test_the_imagenet_x_package_reads_our_export_and_agrees_with_our_analysis(tmp_path, make_cache, val_labels):
    """50,000 generated val predictions: our ImageNet-X analysis on the cache vs the package on our export."""
    import imagenet_x

    rng = np.random.default_rng(3)
    n = len(val_labels)
    logits = rng.standard_normal((n, 1000), dtype=np.float32)
    right = rng.random(n) < 0.75
    logits[np.flatnonzero(right), val_labels.to_numpy()[right]] += 4.0
    cache_dir = make_cache("val", logits, val_labels.to_numpy(), val_labels.index.tolist(), {"name": "imagenet_val"})
    del logits
    out = tmp_path / "ours"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["analyze-cache", str(cache_dir), "--analyses", "imagenet_x", "--out", str(out)]) == 0
    record = json.loads((out / "records" / "imagenet_x" / "imagenet_val" / "my_model.json").read_text())
    folder = tmp_path / "package_models"
    folder.mkdir()
    export_predictions(cache_dir, "imagenet-x", folder)
    accuracies = imagenet_x.get_factor_accuracies(str(folder))
    ratios = imagenet_x.error_ratio(accuracies)
    assert list(ratios.index) == ["my_model"]
    for factor in ix_data.FACTORS:
        assert record["metrics"][f"imagenet_x/{factor}/error_ratio"] == pytest.approx(
            ratios.loc["my_model", factor], abs=1e-12
        )
    assert record["metrics"]["imagenet_x/average"] == pytest.approx(100 * accuracies.loc["my_model", "average"])


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("n01440764_10026.JPEG,0,0.5", "not ImageNet val file names"),
        ("ILSVRC2012_val_00000001.JPEG,1000,0.5", r"predicted_class is an integer in -1\.\.999 \(lines 3: '1000'\)"),
        ("ILSVRC2012_val_00000001.JPEG,3.5,0.5", "predicted_class is an integer"),
        ("ILSVRC2012_val_00000001.JPEG,3,0.001", r"above 1/1000 .*\(lines 3: '0\.001' for class 3\)"),
        ("ILSVRC2012_val_00000001.JPEG,3,1.2", "at most 1 for a class"),
        ("ILSVRC2012_val_00000001.JPEG,-1,0.7", r"1/1000\.\.1/2 for a tied top-1"),
        ("ILSVRC2012_val_00000001.JPEG,3,", "predicted_probability is the top-1 softmax probability"),
        (
            "ILSVRC2012_val_00000002.JPEG,3,0.5",
            r"each file_name occurs once \(lines 3: 'ILSVRC2012_val_00000002\.JPEG'\)",
        ),
    ],
)
@needs_package
def test_bad_rows_are_refused_naming_file_line_and_rule(tmp_path, row, message):
    path = tmp_path / "bad.csv"
    path.write_text(f"{HEADER}\nILSVRC2012_val_00000002.JPEG,7,0.9\n{row}\n")
    with pytest.raises(UserError, match=message) as err:
        import_predictions(path, "imagenet-x", tmp_path / "cache")
    assert str(path) in str(err.value) and not (tmp_path / "cache" / "meta.json").exists()


def test_bad_files_and_options_are_refused_before_any_work(tmp_path, make_cache):
    with pytest.raises(UserError, match="does not exist"):
        import_predictions(tmp_path / "none.csv", "imagenet-x", tmp_path / "cache")
    (tmp_path / "header.csv").write_text("file,class\nILSVRC2012_val_00000001.JPEG,1\n")
    with pytest.raises(UserError, match=r"header lacks \['file_name', 'predicted_class', 'predicted_probability'\]"):
        import_predictions(tmp_path / "header.csv", "imagenet-x", tmp_path / "cache")
    with pytest.raises(UnknownNameError, match="Did you mean 'imagenet-x'"):
        import_predictions(tmp_path / "header.csv", "imagenet_x", tmp_path / "cache")
    existing = make_cache("existing", np.zeros((1, 1000)), [0], ["ILSVRC2012_val_00000001.JPEG"], {"name": "x"})
    with pytest.raises(UserError, match=r"already holds a cache.*--force"):
        import_predictions(tmp_path / "header.csv", "imagenet-x", existing)
    with pytest.raises(UserError, match="holds no logits; --with-logits needs --format parquet"):
        export_predictions(existing, "imagenet-x", tmp_path / "x.csv", with_logits=True)
    with pytest.raises(UserError, match="family 'cnn'"):
        options = ImportOptions(family="cnn")
        (tmp_path / "ok.csv").write_text(f"{HEADER}\nILSVRC2012_val_00000001.JPEG,1,0.5\n")
        import_predictions(tmp_path / "ok.csv", "imagenet-x", tmp_path / "cache", options)


def test_export_refuses_a_cache_without_imagenet_logits(tmp_path, make_cache):
    label, output = {"kind": "custom", "n_classes": 4}, {"kind": "label_space", "n_classes": 4}
    cache = make_cache("c4", np.zeros((2, 4)), [0, 1], ["a.png", "b.png"], {"name": "mine"}, label, output=output)
    with pytest.raises(UserError, match=r"4 logit columns of output space 'label_space'.*--format parquet"):
        export_predictions(cache, "imagenet-x", tmp_path / "x.csv")
