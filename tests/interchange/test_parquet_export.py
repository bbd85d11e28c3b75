"""The parquet export: per-sample predictions of any cache, the logits bit for bit on request."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from beyond_imagenet.inference.interchange import export_predictions
from beyond_imagenet.inference.interchange.parquet import read_metadata


def test_columns_and_values_of_an_imagenet_cache(tmp_path, make_cache):
    logits = np.zeros((3, 1000), dtype=np.float32)
    logits[0, [7, 3, 9, 1, 2, 5]] = [6, 5, 4, 3, 2, 1]
    logits[1, [10, 20]] = 2.0  # a tied maximum: no top-1, top-5 in column order
    logits[2] = np.linspace(-1, 1, 1000, dtype=np.float32)
    ids = ["a.JPEG", "b.JPEG", "c.JPEG"]
    cache = make_cache("val", logits, [7, 10, 0], ids, {"name": "imagenet_val"})
    out = export_predictions(cache, "parquet", tmp_path / "p.parquet", with_logits=True)
    table = pq.read_table(out)
    assert table.schema.names == ["sample_id", "target", "top1", "top1_probability", "top5", "logits"]
    assert table.schema.field("top5").type == pa.list_(pa.int64(), 5)
    assert table.schema.field("logits").type == pa.list_(pa.float32(), 1000)
    rows = table.to_pydict()
    assert rows["sample_id"] == ids and rows["target"] == [7, 10, 0]
    assert rows["top1"] == [7, -1, 999]
    assert rows["top5"] == [[7, 3, 9, 1, 2], [10, 20, 0, 1, 2], [999, 998, 997, 996, 995]]
    z = logits.astype(np.float64)
    expected = np.exp(z.max(axis=1)) / np.exp(z).sum(axis=1)
    np.testing.assert_allclose(rows["top1_probability"], expected, rtol=1e-14)
    stored = np.stack(table.column("logits").to_numpy(zero_copy_only=False))
    assert stored.dtype == np.float32 and stored.tobytes() == logits.tobytes()  # bit for bit
    info = read_metadata(out)
    assert info["columns"] == "label_space" and info["n_classes"] == 1000
    assert info["cache_meta"]["model"]["model_id"] == "my_model"


def test_subset_caches_score_the_dataset_classes_and_cue_conflict_the_outputs(tmp_path, make_cache):
    logits = np.zeros((2, 1000), dtype=np.float32)
    logits[:, 999] = 9.0  # outside the subset: ignored in the label space
    logits[0, 30], logits[1, 10] = 5.0, 4.0
    label = {"kind": "imagenet_subset", "n_classes": 3, "imagenet_columns": [10, 20, 30]}
    subset = make_cache("r", logits, [2, 0], ["x/1.jpg", "y/2.jpg"], {"name": "imagenet_r"}, label)
    out = export_predictions(subset, "parquet", tmp_path)
    assert out == tmp_path / "my_model.parquet"
    rows = pq.read_table(out).to_pydict()
    assert rows["top1"] == [2, 0] and rows["top5"] == [[2, 0, 1], [0, 1, 2]]  # indices of the 3 classes
    assert "logits" not in rows and read_metadata(out)["columns"] == "label_space"
    cue = make_cache("cue", logits, [7, 10], ["cat1-dog2.png", "dog1-cat2.png"], {"name": "cue_conflict"},
                     {"kind": "custom", "n_classes": 16})  # fmt: skip
    rows = pq.read_table(export_predictions(cue, "parquet", tmp_path / "cue.parquet")).to_pydict()
    assert rows["top1"] == [999, 999] and read_metadata(tmp_path / "cue.parquet")["columns"] == "output_space"
