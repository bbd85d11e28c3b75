"""The built-in offline demo: seeded stand-ins for every dataset of the paper, each in its real on-disk format.

``make_demo_data`` writes ``data/demo`` (``make demo``): an ImageNet-val-format set (``imagenet_val``), stand-ins for
V2, A, R, Sketch, C, Hard, PUG, cue-conflict, ReaL and ImageNet-X (``stand_ins``) and the 17 VTAB image sources
(``vtab``). Same seed, same bytes; numbers computed on them mean nothing.
"""

from __future__ import annotations

from pathlib import Path

DEMO_ROOT = Path("data/demo")
DEMO_SEED = 20240721  # fixed: data.dvc records the bytes this seed produces
DEMO_CLASS_INDICES = tuple(range(0, 1000, 100))  # 10 ImageNet classes spread over the hierarchy
DEMO_IMAGES_PER_CLASS = 40
