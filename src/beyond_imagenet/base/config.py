"""``params.yaml``: typed schema, strict validation, one place that reads it (docs/architecture.md, principle 6).

Every key is declared below; an unknown key, a wrong type or a value outside its choices raises
:class:`ParamsError` naming the field (``inference.batch_size``) before anything expensive starts. Checks that
need the data layer's tables (VTAB task names, layouts) run in ``stages.params``, before any stage starts.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from beyond_imagenet.base.errors import ParamsError
from beyond_imagenet.base.outputs_config import OutputsConfig, SideStudyConfig, TrackingConfig
from beyond_imagenet.base.schema import build_dataclass
from beyond_imagenet.base.statistics_config import StatisticsConfig, check_statistics
from beyond_imagenet.base.world_config import WorldTrainingConfig, check_world

DEFAULT_PARAMS_PATH = Path("params.yaml")


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset: where it is and how to read its labels (see ``beyond_imagenet.data.registry``)."""

    path: str
    kind: str | None = None  # registered dataset kind; defaults to the entry's name when that is registered
    label_space: Literal["imagenet1k", "imagenet_subset", "custom"] | None = None
    class_folders: Literal["wnid", "integer", "any"] | None = None
    classnames_file: str | None = None  # custom label spaces: JSON {class_id: name}
    imagenet_map_file: str | None = None  # custom label spaces: JSON {class_id: [one imagenet index]}, one-to-one
    # False: accept fewer images or classes than the registered kind has (a subset, or a demo stand-in);
    # the manifest then says `complete: false`.
    check_size: bool = True
    # model: each model's own resize + crop (docs/protocol.md §1.3); none: ToTensor + normalisation only, for
    # images already at the model's input size (cue-conflict §6, ImageNet-C §7.8 default).
    geometry: Literal["model", "none"] | None = None
    # ImageNet-Hard: the pinned commit of the Hugging Face dataset taesiri/imagenet-hard (docs/protocol.md §7.6)
    revision: str | None = None


@dataclass(frozen=True)
class InferenceConfig:
    """The single cached pass over each dataset (docs/architecture.md, data flow)."""

    batch_size: int = 64
    precision: Literal["fp32", "bf16"] = "fp32"
    preprocessing: Literal["paper", "native"] = "paper"
    num_workers: int | Literal["auto"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    chunk_size: int = 2048
    bad_images: Literal["error", "skip"] = "error"
    cache_dir: str = "cache"
    # "tensor" = batched torchvision.io.decode_jpeg on the accelerator (nvjpeg on a GPU, CPU otherwise), then
    # resize/crop/normalise there; workers only read file bytes. Non-JPEGs and rejected images fall back to
    # Pillow; plain-file datasets only (others decode with Pillow). Part of the cache hash: it changes pixels.
    decode: Literal["pillow", "tensor"] = "pillow"
    # Speed only (not part of a cache's hash; recorded in its meta.json): NHWC tensors and weights on the GPU,
    # and torch.compile of each backbone (compiles once per run and input shape, then runs faster).
    channels_last: bool = True
    compile: bool = False


@dataclass(frozen=True)
class AccuracyConfig:
    """``analyses.accuracy``: top-1 and top-5 on each listed dataset's label space (docs/protocol.md §2.3, §7.1)."""

    datasets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CalibrationConfig:
    """``analyses.calibration``: ECE, reliability diagram and confidence histogram (§5, Fig. 4), per dataset."""

    datasets: list[str] = field(default_factory=list)
    n_bins: int = 15  # docs/protocol.md §5: M = 15


@dataclass(frozen=True)
class RobustnessConfig:
    """Table 2: each listed dataset's kind (imagenet_val, imagenet_v2, imagenet_a, ...) is its column."""

    datasets: list[str] = field(default_factory=list)
    # ReaL labels (§7.7): real.json or imagenet_real_labels.jsonl; default: the file shipped in imagenet-x
    real_labels: str | None = None
    # true: score ReaL on the val images present (a subset of val, or of real.json) instead of refusing (§7.7)
    real_allow_partial: bool = False
    # Effective robustness (docs/transfer.md §5.2): a shift's top-1 minus the baseline's logit-linear fit on the ID
    # top-1. testbed: the 85 standard ImageNet models of imagenet-testbed (data/baselines); models: the listed models
    # of this run, refitted on every resample; file: a CSV of top-1 % per model (columns named by dataset kind)
    baseline: Literal["testbed", "models", "file", "none"] = "testbed"
    baseline_models: list[str] = field(default_factory=list)
    baseline_file: str | None = None
    # multi-ID effective robustness (Shi et al. 2023): the dataset whose top-1 is the second ID axis of the fit
    second_id: str | None = None


@dataclass(frozen=True)
class ImageNetXConfig:
    """Error ratios per factor (§3) on an ImageNet val dataset."""

    dataset: str | None = None
    annotations_dir: str | None = None  # default: the annotations shipped in the imagenet-x package
    denominator: Literal["annotated", "paper"] = "annotated"  # package behaviour | paper formula
    allow_partial: bool = False


@dataclass(frozen=True)
class PugConfig:
    """``analyses.pug``: top-1 per PUG-ImageNet factor subset and their mean (§4, Fig. 3)."""

    dataset: str | None = None
    label_map: Literal["official", "corrected"] = "official"  # §4 Shirt/Sweatshirt collision


@dataclass(frozen=True)
class ShapeBiasConfig:
    """``analyses.shape_bias``: shape bias on the cue-conflict stimuli (§6, Fig. 5)."""

    dataset: str | None = None


@dataclass(frozen=True)
class InvarianceConfig:
    """Transformation-invariance sweeps on an ImageNet val dataset (§9, Fig. 7); each point is a cache variant."""

    dataset: str | None = None
    scales: list[float] = field(default_factory=lambda: [1.0, 1.25, 1.5, 2.0, 3.0])  # §9.1: s, shorter side int(s·R)
    shifts: list[int] = field(default_factory=lambda: [0, 5, 30, 75, 100])  # §9.2: d pixels along the longer side
    resolutions: list[int] = field(default_factory=lambda: [112, 224, 336, 512, 640])  # §9.3: r
    images_per_class: int | None = None  # None: the whole dataset (the paper); k: first k per class, a quick run


@dataclass(frozen=True)
class CkaConfig:
    """Minibatch linear CKA (§10, Fig. 8), computed from the models by the ``cka`` stage, not from caches."""

    dataset: str | None = None
    fraction: float = 0.1  # class-stratified subset: 5 of the 50 images per class of ImageNet val
    batch_size: int = 256  # images per CKA minibatch; a last batch under 4 images is dropped (unbiased HSIC)
    layer_types: list[Literal["all", "attention_or_conv", "linear", "normalisation"]] = field(
        default_factory=lambda: ["all", "attention_or_conv", "linear", "normalisation"]
    )
    cross_model: bool = True  # beyond the paper: CKA between the "all" layers of every pair of models


@dataclass(frozen=True)
class AnalysesConfig:
    """``analyses``: one section per analysis (docs/protocol.md §2.3-§10), each naming keys of ``datasets``.

    The ``analyze`` stage runs all but ``cka`` from the caches; the ``cka`` stage runs that one from the models.
    """

    accuracy: AccuracyConfig = field(default_factory=AccuracyConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    imagenet_x: ImageNetXConfig = field(default_factory=ImageNetXConfig)
    pug: PugConfig = field(default_factory=PugConfig)
    shape_bias: ShapeBiasConfig = field(default_factory=ShapeBiasConfig)
    invariance: InvarianceConfig = field(default_factory=InvarianceConfig)
    cka: CkaConfig = field(default_factory=CkaConfig)

    def dataset_references(self) -> list[tuple[str, str]]:
        """(field, dataset name) for every dataset an analysis names, e.g. ("pug.dataset", "pug_imagenet")."""
        refs = []
        for analysis in dataclasses.fields(self):
            section = getattr(self, analysis.name)
            refs += [(f"{analysis.name}.datasets", n) for n in getattr(section, "datasets", None) or []]
            if getattr(section, "dataset", None):
                refs.append((f"{analysis.name}.dataset", section.dataset))
        return refs


@dataclass(frozen=True)
class ProbeParams:
    """One probe fit (docs/transfer.md §2.2, §2.6): the fixed settings; the search tunes weight decay on top."""

    lr: float = 0.1
    epochs: int = 40
    batch_size: int = 256
    seed: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"  # never fp16 without a scaler (§8.10)
    engine: Literal["lightning", "loop"] = "lightning"  # loop: same weights without Lightning's per-step overhead
    normalize: bool = True  # L2-normalise each feature vector (§2.1)


@dataclass(frozen=True)
class ProbeSearchParams:
    """Hyper-parameter search on train -> val only (docs/transfer.md §2.3, §4)."""

    method: Literal["tpe", "grid"] = "tpe"  # seeded Optuna TPE, or CLIP_benchmark's coarse-to-fine wd grid
    n_trials: int = 19  # TPE budget (the grid's 19 fits)
    n_startup_trials: int = 7
    metric: Literal["top1", "mean_per_class_recall"] = "top1"  # decided up front (§4)
    lr: list[float] | None = None  # [low, high]: also tune lr (log-uniform), the §4 extension
    epochs: list[int] | None = None  # e.g. [10, 20, 40]: also tune epochs (categorical)


@dataclass(frozen=True)
class TransferConfig:
    """VTAB linear probes on cached features (paper §6, Table 3, Fig. 6 bottom; docs/transfer.md)."""

    root: str | None = None  # folder holding the VTAB copies; unset: the transfer stages do nothing
    # on-disk format, a registered layout of data/vtab/layouts (docs/vtab.md): tfds_parquet exports (exact VTAB
    # splits), the clip-benchmark WebDataset mirrors (wds), or torchvision's own files (CIFAR, SVHN, DTD, Flowers,
    # Pets only); checked against the registry by stages.params
    layout: str = "tfds_parquet"
    preset: Literal["vtab19", "clipbench19"] = "clipbench19"  # §3.3; clipbench19 matches the paper best
    tasks: list[str] | None = None  # a subset of the preset; the aggregate names the others as missing
    protocol: Literal["full", "1k"] = "full"  # full splits (the paper) or VTAB-1k (§3.4)
    check_size: bool = True  # False: accept split sizes other than docs/transfer.md §3.1 (a subset or the demo)
    val_seed: int = 0  # layout wds only: seed of the stratified val hold-out carved from train (§4)
    features_dir: str = "features"  # feature caches: <features_dir>/<model>/<source>/<split>/
    device: Literal["auto", "cpu", "cuda"] = "auto"  # where the probes train
    probe: ProbeParams = field(default_factory=ProbeParams)
    search: ProbeSearchParams = field(default_factory=ProbeSearchParams)


@dataclass(frozen=True)
class Params:
    """The whole of ``params.yaml``: the models, the datasets and every section above, as ``load_params`` returns it."""

    models: list[str]
    datasets: dict[str, DatasetConfig]
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    analyses: AnalysesConfig = field(default_factory=AnalysesConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    results_dir: str = "results"
    reports_dir: str = "reports"
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    side_studies: dict[str, SideStudyConfig] = field(default_factory=dict)
    world: WorldTrainingConfig = field(default_factory=WorldTrainingConfig)


def _check_values(params: Params) -> None:
    if params.inference.batch_size < 1:
        raise ParamsError(f"params: inference.batch_size must be >= 1, got {params.inference.batch_size}")
    if params.inference.chunk_size < 1:
        raise ParamsError(f"params: inference.chunk_size must be >= 1, got {params.inference.chunk_size}")
    workers = params.inference.num_workers
    if isinstance(workers, int) and workers < 0:
        raise ParamsError(f"params: inference.num_workers must be >= 0 or 'auto', got {workers}")
    if params.analyses.calibration.n_bins < 1:
        raise ParamsError(f"params: analyses.calibration.n_bins must be >= 1, got {params.analyses.calibration.n_bins}")
    _check_sweeps(params.analyses.invariance)
    _check_cka(params.analyses.cka)
    _check_transfer(params.transfer)
    check_statistics(params.statistics)
    check_world(params.world)
    _check_robustness(params.analyses.robustness, params.datasets, params.models)
    if not params.models:
        raise ParamsError("params: models must name at least one model (see `beyond-imagenet list-models`)")
    for where, name in params.analyses.dataset_references():
        if name not in params.datasets:
            close = difflib.get_close_matches(name, list(params.datasets), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ParamsError(f"params: analyses.{where} names {name!r}, which is not a key of `datasets`.{hint}")


def _check_robustness(config: RobustnessConfig, datasets: dict, models: list[str]) -> None:
    where = "params: analyses.robustness"
    if config.baseline == "models" and len(config.baseline_models) < 3:
        raise ParamsError(f"{where}.baseline_models must list >= 3 models for baseline: models (5 or more advised)")
    if len(set(config.baseline_models)) != len(config.baseline_models):
        raise ParamsError(f"{where}.baseline_models lists a model twice: {config.baseline_models}")
    strangers = [m for m in config.baseline_models if m not in models]
    if strangers:
        raise ParamsError(f"{where}.baseline_models names {strangers}, which are not in `models`; add them there")
    if config.baseline == "file" and not config.baseline_file:
        raise ParamsError(f"{where}.baseline_file must name a CSV of top-1 % per model for baseline: file")
    if config.second_id is not None:
        if config.baseline not in ("models", "file"):
            raise ParamsError(f"{where}.second_id needs baseline: models or file (the testbed has one ID axis)")
        if config.second_id not in datasets:
            raise ParamsError(f"{where}.second_id names {config.second_id!r}, which is not a key of `datasets`")


def _check_sweeps(config: InvarianceConfig) -> None:
    where = "params: analyses.invariance"
    if any(s <= 0 for s in config.scales):
        raise ParamsError(f"{where}.scales must be positive factors of the standard resize, got {config.scales}")
    if any(d < 0 for d in config.shifts):
        raise ParamsError(f"{where}.shifts must be pixel offsets >= 0, got {config.shifts}")
    if any(r < 16 for r in config.resolutions):
        raise ParamsError(f"{where}.resolutions must be input sizes >= 16 px, got {config.resolutions}")
    if config.images_per_class is not None and config.images_per_class < 1:
        raise ParamsError(f"{where}.images_per_class must be >= 1 or null (all images), got {config.images_per_class}")
    for name in ("scales", "shifts", "resolutions"):
        values = getattr(config, name)
        if len(set(values)) != len(values):
            raise ParamsError(f"{where}.{name} lists a value twice: {values}")


def _check_cka(config: CkaConfig) -> None:
    where = "params: analyses.cka"
    if not 0 < config.fraction <= 1:
        raise ParamsError(f"{where}.fraction must be in (0, 1] (the paper: 0.1), got {config.fraction}")
    if config.batch_size < 4:
        raise ParamsError(f"{where}.batch_size must be >= 4: the unbiased HSIC needs n >= 4, got {config.batch_size}")
    if not config.layer_types:
        raise ParamsError(f"{where}.layer_types must name at least one layer type")


def _check_transfer(config: TransferConfig) -> None:
    where = "params: transfer"
    probe, search = config.probe, config.search
    if not (probe.lr > 0 and probe.epochs >= 1 and probe.batch_size >= 1):
        raise ParamsError(f"{where}.probe needs lr > 0, epochs >= 1 and batch_size >= 1, got {probe}")
    if search.n_trials < 1 or search.n_startup_trials < 0:
        raise ParamsError(f"{where}.search.n_trials must be >= 1 and n_startup_trials >= 0, got {search}")
    if search.lr is not None and not (len(search.lr) == 2 and 0 < search.lr[0] < search.lr[1]):
        raise ParamsError(f"{where}.search.lr must be [low, high] with 0 < low < high, got {search.lr}")
    if search.epochs is not None and (not search.epochs or min(search.epochs) < 1):
        raise ParamsError(f"{where}.search.epochs must list positive epoch counts, got {search.epochs}")
    if search.method == "grid" and (search.lr or search.epochs):
        raise ParamsError(f"{where}.search: the grid tunes weight decay only (§2.3); use method: tpe for lr/epochs")
    if config.tasks is not None and not config.tasks:
        raise ParamsError(f"{where}.tasks must name at least one task, or be null for the whole preset")


def parse_params(data: Any) -> Params:
    """Validate a parsed YAML document and return :class:`Params`."""
    params = build_dataclass(Params, data, "")
    _check_values(params)
    return params


def load_params(path: str | Path = DEFAULT_PARAMS_PATH) -> Params:
    """Read and validate ``params.yaml`` (or ``path``); the one place the file is read.

    Raises:
        ParamsError: the file is missing, is not valid YAML, or fails the schema or value checks.
    """
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"params file {path} not found; run from the repository root or pass --params PATH")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"params file {path} is not valid YAML: {err}") from err
    return parse_params(data)


def parse_section(cls: type, data: Any, where: str) -> Any:
    """Validate one section (e.g. ``InferenceConfig`` from a dict) exactly as ``load_params`` would.

    ``where`` names the section in errors (``inference``).
    """
    return build_dataclass(cls, data, where)


def section_as_dict(obj: Any) -> Any:
    """Plain-dict view of a params section (for provenance records and MLflow params)."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
