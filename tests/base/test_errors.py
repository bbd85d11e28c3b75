"""Unknown-name errors: close matches and a readable list of the known names."""

from __future__ import annotations

import pytest

from beyond_imagenet.base.errors import UnknownNameError, plural


@pytest.mark.parametrize(
    ("noun", "expected"),
    [
        ("analysis", "analyses"),
        ("model", "models"),
        ("model source", "model sources"),
        ("PUG class folder", "PUG class folders"),
        ("side study", "side studies"),
        ("timm model key", "timm model keys"),
    ],
)
def test_plural(noun, expected):
    assert plural(noun) == expected


def test_unknown_analysis_suggests_the_close_name_and_lists_the_analyses():
    error = UnknownNameError("analysis", "shape_bais", ["shape_bias", "pug", "accuracy"])
    assert (
        str(error)
        == "unknown analysis 'shape_bais'. Did you mean 'shape_bias'? Known analyses: accuracy, pug, shape_bias."
    )
    assert error.close_matches == ["shape_bias"]
