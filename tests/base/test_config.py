"""params.yaml validation: every wrong type, unknown key or missing key names the dotted field."""

from __future__ import annotations

import copy

import pytest
import yaml

from beyond_imagenet.base.config import (
    DatasetConfig,
    InferenceConfig,
    Params,
    load_params,
    parse_params,
    section_as_dict,
)
from beyond_imagenet.base.errors import ParamsError, UserError
from helpers import REPO_ROOT

MINIMAL = {"models": ["demo_random_vit_sup"], "datasets": {"demo_val": {"path": "data/demo/val"}}}


def with_changes(**sections) -> dict:
    """MINIMAL with top-level keys replaced or added."""
    data = copy.deepcopy(MINIMAL)
    data.update(copy.deepcopy(sections))
    return data


def test_repo_params_yaml_parses():
    params = load_params(REPO_ROOT / "params.yaml")
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    assert isinstance(params, Params)
    assert params.models == raw["models"]
    assert set(params.datasets) == set(raw["datasets"])
    for name, entry in raw["datasets"].items():
        assert params.datasets[name].path == entry["path"]
    for key, value in raw.get("inference", {}).items():
        assert getattr(params.inference, key) == value
    assert params.analyses.calibration.datasets == raw["analyses"]["calibration"]["datasets"]
    assert params.analyses.calibration.n_bins == raw["analyses"]["calibration"]["n_bins"]
    for key, value in raw["tracking"].items():
        assert section_as_dict(params.tracking)[key] == value


def test_minimal_params_take_documented_defaults():
    params = parse_params(with_changes())
    assert params.models == ["demo_random_vit_sup"]
    assert params.datasets == {"demo_val": DatasetConfig(path="data/demo/val")}
    assert params.inference == InferenceConfig()
    assert (params.inference.precision, params.inference.preprocessing, params.inference.num_workers) == (
        "fp32",
        "paper",
        "auto",
    )
    assert params.analyses.calibration.n_bins == 15
    assert (params.results_dir, params.reports_dir) == ("results", "reports")


def test_missing_params_file_is_a_params_error(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_invalid_yaml_is_a_params_error(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("models: [a, b\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


@pytest.mark.parametrize(
    ("data", "field", "shown"),
    [
        (with_changes(inference={"batch_size": "abc"}), "inference.batch_size", "'abc'"),
        (with_changes(inference={"precision": "fp16"}), "inference.precision", "'fp16'"),
        (with_changes(inference={"preprocessing": "timm"}), "inference.preprocessing", "'timm'"),
        (with_changes(inference={"chunk_size": 1.5}), "inference.chunk_size", "1.5"),
        (with_changes(models="vit_sup"), "models", "'vit_sup'"),
        (with_changes(models=["vit_sup", 3]), "models[1]", "3"),
        (with_changes(datasets={"demo_val": {"path": 3}}), "datasets.demo_val.path", "3"),
        (
            with_changes(datasets={"demo_val": {"path": "x", "label_space": "in1k"}}),
            "datasets.demo_val.label_space",
            "'in1k'",
        ),
        (with_changes(datasets=["demo_val"]), "datasets", "['demo_val']"),
        (with_changes(tracking={"enabled": "yes please"}), "tracking.enabled", "'yes please'"),
        (with_changes(analyses={"calibration": {"n_bins": "15"}}), "analyses.calibration.n_bins", "'15'"),
    ],
)
def test_wrong_types_name_the_dotted_field(data, field, shown):
    with pytest.raises(ParamsError) as info:
        parse_params(data)
    message = str(info.value)
    assert message.startswith(f"params: {field} must be ")
    assert shown in message


@pytest.mark.parametrize(
    ("data", "key", "suggestion"),
    [
        (with_changes(modles=["a"]), "modles", "models"),
        (with_changes(inference={"batchsize": 8}), "inference.batchsize", "batch_size"),
        (with_changes(analyses={"calibraton": {}}), "analyses.calibraton", "calibration"),
        (with_changes(analyses={"calibration": {"nbins": 10}}), "analyses.calibration.nbins", "n_bins"),
        (with_changes(datasets={"demo_val": {"path": "x", "knd": "demo_val"}}), "datasets.demo_val.knd", "kind"),
    ],
)
def test_unknown_keys_are_named_with_a_close_match(data, key, suggestion):
    with pytest.raises(ParamsError) as info:
        parse_params(data)
    assert str(info.value) == f"params: unknown key {key!r}; did you mean {suggestion!r}?"


def test_unknown_key_without_close_match_lists_allowed_keys():
    with pytest.raises(ParamsError) as info:
        parse_params(with_changes(inference={"zzz": 1}))
    message = str(info.value)
    assert "'inference.zzz'" in message
    assert "allowed keys" in message and "batch_size" in message and "num_workers" in message


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"datasets": {"demo_val": {"path": "x"}}}, "models"),
        ({"models": ["demo_random_vit_sup"]}, "datasets"),
        ({"models": ["demo_random_vit_sup"], "datasets": {"demo_val": {"kind": "demo_val"}}}, "datasets.demo_val.path"),
    ],
)
def test_missing_required_keys(data, key):
    with pytest.raises(ParamsError) as info:
        parse_params(data)
    assert str(info.value) == f"params: missing required key {key!r}"


def test_empty_model_list_is_rejected():
    with pytest.raises(ParamsError, match="models must name at least one model"):
        parse_params(with_changes(models=[]))


def test_document_must_be_a_mapping():
    with pytest.raises(ParamsError, match="must be a mapping"):
        parse_params(["models"])
    with pytest.raises(ParamsError, match="must be a mapping"):
        parse_params(None)


@pytest.mark.parametrize("analysis", ["accuracy", "calibration"])
def test_analysis_dataset_must_be_declared(analysis):
    with pytest.raises(ParamsError) as info:
        parse_params(with_changes(analyses={analysis: {"datasets": ["demo_val", "demo_vla"]}}))
    message = str(info.value)
    assert f"analyses.{analysis}.datasets" in message
    assert "'demo_vla'" in message and "Did you mean 'demo_val'?" in message


def test_analysis_datasets_that_exist_are_accepted():
    params = parse_params(
        with_changes(
            datasets={"a": {"path": "x"}, "b": {"path": "y", "kind": "image_folder"}},
            analyses={"accuracy": {"datasets": ["a", "b"]}, "calibration": {"datasets": ["b"], "n_bins": 10}},
        )
    )
    assert params.analyses.accuracy.datasets == ["a", "b"]
    assert params.analyses.calibration.datasets == ["b"] and params.analyses.calibration.n_bins == 10
    assert params.datasets["b"].kind == "image_folder"


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("inference", "batch_size"),
        ("inference", "chunk_size"),
        ("inference", "num_workers"),
    ],
)
@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_integers(section, key, value):
    with pytest.raises(ParamsError) as info:
        parse_params(with_changes(**{section: {key: value}}))
    assert f"{section}.{key}" in str(info.value)
    assert "(bool)" in str(info.value)


@pytest.mark.parametrize("value", [True, False])
def test_n_bins_rejects_booleans(value):
    with pytest.raises(ParamsError, match=r"analyses\.calibration\.n_bins"):
        parse_params(with_changes(analyses={"calibration": {"n_bins": value}}))


def test_integers_are_not_booleans():
    with pytest.raises(ParamsError, match=r"tracking\.enabled must be true/false"):
        parse_params(with_changes(tracking={"enabled": 1}))


@pytest.mark.parametrize("value", ["auto", 0, 1, 15])
def test_num_workers_accepts_auto_and_non_negative_ints(value):
    params = parse_params(with_changes(inference={"num_workers": value}))
    assert params.inference.num_workers == value
    assert type(params.inference.num_workers) is type(value)


@pytest.mark.parametrize(
    ("value", "pattern"), [(-1, ">= 0 or 'auto'"), ("all", "an integer or 'auto'"), (2.0, "an integer")]
)
def test_num_workers_rejects_other_values(value, pattern):
    with pytest.raises(ParamsError) as info:
        parse_params(with_changes(inference={"num_workers": value}))
    assert "inference.num_workers" in str(info.value) and pattern in str(info.value)


@pytest.mark.parametrize(("key", "value"), [("batch_size", 0), ("chunk_size", 0), ("batch_size", -4)])
def test_sizes_must_be_positive(key, value):
    with pytest.raises(ParamsError, match=rf"inference\.{key} must be >= 1, got {value}"):
        parse_params(with_changes(inference={key: value}))


def test_params_error_is_a_user_error():
    assert issubclass(ParamsError, UserError)


def test_load_params_reads_a_written_file(tmp_path):
    data = with_changes(
        inference={"batch_size": 7, "precision": "bf16", "num_workers": 0},
        datasets={"v2": {"path": "d/v2", "kind": "image_folder", "class_folders": "integer"}},
        analyses={"accuracy": {"datasets": ["v2"]}},
    )
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    params = load_params(path)
    assert (params.inference.batch_size, params.inference.precision, params.inference.num_workers) == (7, "bf16", 0)
    assert params.datasets["v2"] == DatasetConfig(path="d/v2", kind="image_folder", class_folders="integer")


def test_paper_config_parses_with_the_protocol_settings():
    params = load_params(REPO_ROOT / "configs" / "paper.yaml")
    assert params.models == ["vit_sup", "convnext_sup", "vit_clip", "convnext_clip"]
    assert params.analyses.cka.fraction == 0.1 and params.analyses.cka.batch_size == 256  # §10
    invariance = params.analyses.invariance
    assert invariance.dataset == "imagenet_val" and invariance.images_per_class is None  # all 50,000 images
    assert (invariance.scales, invariance.shifts, invariance.resolutions) == (
        [1, 1.25, 1.5, 2, 3],
        [0, 5, 30, 75, 100],
        [112, 224, 336, 512, 640],
    )  # §9.1-9.3
    assert params.analyses.robustness.datasets[0] == "imagenet_val"


@pytest.mark.parametrize(
    ("section", "pattern"),
    [
        ({"cka": {"fraction": 1.5}}, r"analyses\.cka\.fraction must be in \(0, 1\]"),
        ({"cka": {"batch_size": 2}}, r"analyses\.cka\.batch_size must be >= 4"),
        ({"cka": {"layer_types": ["conv"]}}, r"analyses\.cka\.layer_types\[0\]"),
        ({"invariance": {"scales": [1, 0]}}, r"analyses\.invariance\.scales must be positive"),
        ({"invariance": {"shifts": [0, 5, 5]}}, r"analyses\.invariance\.shifts lists a value twice"),
        ({"invariance": {"resolutions": [8]}}, r"analyses\.invariance\.resolutions must be input sizes"),
        ({"invariance": {"images_per_class": 0}}, r"analyses\.invariance\.images_per_class must be >= 1"),
    ],
)
def test_sweep_and_cka_settings_are_validated(section, pattern):
    with pytest.raises(ParamsError, match=pattern):
        parse_params(with_changes(analyses=section))
