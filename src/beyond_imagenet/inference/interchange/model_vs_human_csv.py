"""model-vs-human's raw-data CSV of the cue-conflict experiment (bethgelab/model-vs-human; docs/interchange.md).

``subj,session,trial,rt,object_response,category,condition,imagename``: one row per stimulus, ``object_response`` the
16-class decision, ``category`` the shape class, ``imagename`` the stimulus file ``<shape><i>-<texture><j>.png``
(model-vs-human reads the texture from the part after the last '_'). Models' files are
``cue-conflict_<model>_session-1.csv`` with ``rt`` and ``condition`` ``NaN``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from beyond_imagenet.base.errors import UserError
from beyond_imagenet.base.files import atomic_write_text
from beyond_imagenet.base.hashing import safe_name
from beyond_imagenet.data.cue_conflict import CATEGORIES, CATEGORY_INDICES, parse_cue_conflict_name
from beyond_imagenet.inference.cache import InferenceCache
from beyond_imagenet.inference.interchange.common import (
    INTERCHANGE_KEY,
    Imported,
    ImportOptions,
    bad_rows_error,
    model_entry,
    read_csv_strings,
    source_entry,
    unique_ids,
)
from beyond_imagenet.metrics.shape_bias import NO_DECISION, decision_names, decisions_from_logits

NAME = "model-vs-human"
COLUMNS = ("subj", "session", "trial", "rt", "object_response", "category", "condition", "imagename")
DATASET = "cue_conflict"
STIMULUS = re.compile(r"([a-z]+)\d+-([a-z]+)\d+\.png")
DECISION_LOGIT = 20.0  # on every ImageNet index of the decided category; 0 elsewhere
NO_DECISION_LOGIT = -1000.0  # a tie: on all 207 category indices, so every category's mean probability is exactly 0
N_IMAGENET_CLASSES = 1000
VALID = ("16-class decision",)
LOGITS_NOTE = (
    f"rebuilt from the 16-class decision: logit {DECISION_LOGIT} on the decided category's ImageNet indices, 0 "
    f"elsewhere (no decision: {NO_DECISION_LOGIT} on all 207 category indices); only the decision (and so the shape "
    "bias) is the model's"
)


def default_file_name(model_id: str) -> str:
    """``cue-conflict_<model>_session-1.csv``, with '_' in the model's name written '-' as model-vs-human does."""
    return f"cue-conflict_{safe_name(model_id).replace('_', '-')}_session-1.csv"


def decision_logits(decisions: list[str]) -> np.ndarray:
    """[N, 1000] float32 logits whose mean-probability 16-class decision (docs/protocol.md §6) is ``decisions``.

    ``NO_DECISION`` gives every category probability exactly 0: an exact tie, whatever the summation order.
    """
    logits = np.zeros((len(decisions), N_IMAGENET_CLASSES), dtype=np.float32)
    decisions = np.asarray(decisions, dtype=object)
    all_indices = [i for category in CATEGORIES for i in CATEGORY_INDICES[category]]
    logits[np.ix_(np.flatnonzero(decisions == NO_DECISION), all_indices)] = NO_DECISION_LOGIT
    for category in CATEGORIES:
        logits[np.ix_(np.flatnonzero(decisions == category), CATEGORY_INDICES[category])] = DECISION_LOGIT
    return logits


def _stimuli(path: Path, frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """The stimulus file names (part after the last '_' of ``imagename``) and their shape index (``category``)."""
    names = [name.split("_")[-1] for name in frame["imagename"]]
    matches = [STIMULUS.fullmatch(name) for name in names]
    bad = [i for i, m in enumerate(matches) if m is None or m.group(1) != frame["category"].iloc[i]]
    if bad:
        shown = f": imagename {frame['imagename'].iloc[bad[0]]!r}, category {frame['category'].iloc[bad[0]]!r}"
        rule = "imagename ends in the stimulus <shape><i>-<texture><j>.png and category is its shape"
        raise bad_rows_error(path, bad, rule, "write the cue-conflict file name and its shape class", shown)
    for name, match in zip(names, matches, strict=True):
        parse_cue_conflict_name(match.group(1), name)  # both classes among the 16 (UserError naming the file)
    unique_ids(path, names, "stimulus (imagename)")
    return names, np.array([CATEGORIES.index(m.group(1)) for m in matches], dtype=np.int64)


def _decisions(path: Path, frame: pd.DataFrame) -> list[str]:
    """``object_response``: one of the 16 categories, or ``tie`` (no decision, as this project writes it)."""
    decisions = frame["object_response"].tolist()
    bad = [i for i, d in enumerate(decisions) if d not in CATEGORY_INDICES and d != NO_DECISION]
    if bad:
        rule = f"object_response is one of the 16 categories ({', '.join(CATEGORIES)}) or {NO_DECISION!r}"
        raise bad_rows_error(path, bad, rule, "write the 16-class decision", f": {decisions[bad[0]]!r}")
    return decisions


def _subject(path: Path, frame: pd.DataFrame) -> str:
    subjects = frame["subj"].unique().tolist()
    if len(subjects) != 1:
        raise UserError(
            f"{path}: column subj holds {len(subjects)} values ({subjects[:3]}). Rule: one CSV per subject (model). "
            f"Fix: split the file, one per subj ({NAME} writes one per model)"
        )
    return subjects[0]


def read_model_vs_human(path: Path, options: ImportOptions) -> Imported:
    """The cue-conflict cache a raw-data CSV becomes (rows in the file's order); model id default: ``subj``."""
    frame = read_csv_strings(path, COLUMNS, NAME)
    subject = _subject(path, frame)
    names, targets = _stimuli(path, frame)
    decisions = _decisions(path, frame)
    meta = {
        "model": model_entry(options.model_id or subject, options.family, options.paradigm),
        "dataset": {"name": DATASET, "kind": DATASET, "n_images": len(names)},
        "output_space": {"kind": "imagenet1k", "n_classes": N_IMAGENET_CLASSES},
        "label_space": {"kind": "custom", "n_classes": len(CATEGORIES), "classes": list(CATEGORIES)},
        INTERCHANGE_KEY: source_entry(path, NAME, LOGITS_NOTE, VALID),
    }
    return Imported(decision_logits(decisions), targets, names, meta)


def _check_cue_conflict(cache: InferenceCache) -> list[str]:
    """The stimulus file name of each row, refusing a cache that is not a cue-conflict cache in sorted order."""
    dataset = cache.meta.get("dataset", {})
    if DATASET not in (dataset.get("kind"), dataset.get("name")) or cache.logits.shape[1] != N_IMAGENET_CLASSES:
        raise UserError(
            f"cache {cache.path}: the {NAME} format holds cue-conflict decisions. Rule: dataset.kind or dataset.name "
            f"'{DATASET}' and 1000 ImageNet logits (found {dataset.get('kind') or dataset.get('name')!r}, "
            f"{cache.logits.shape[1]} columns). Fix: export a cue-conflict cache, or use --format parquet"
        )
    names = [sample.split("/")[-1] for sample in cache.sample_ids]
    for row, (name, target) in enumerate(zip(names, cache.targets.tolist(), strict=True)):
        match = STIMULUS.fullmatch(name)
        if match is None or not 0 <= target < len(CATEGORIES) or match.group(1) != CATEGORIES[target]:
            raise UserError(
                f"cache {cache.path}, row {row} ({cache.sample_ids[row]!r}, target {target}): rule: sample ids are "
                "<shape><i>-<texture><j>.png and targets their shape in sorted category order (docs/cache.md). "
                "Fix: rewrite the cache's targets in that order"
            )
    return names


def write_model_vs_human(cache: InferenceCache, out: Path) -> Path:
    """The cache's 16-class decisions (mean probability over each category's indices) as a raw-data CSV."""
    names = _check_cue_conflict(cache)
    frame = pd.DataFrame(
        {
            "subj": cache.model_id,
            "session": 1,
            "trial": np.arange(1, len(names) + 1),
            "rt": "NaN",
            "object_response": decision_names(decisions_from_logits(cache.logits)),
            "category": [CATEGORIES[t] for t in cache.targets],
            "condition": "NaN",
            "imagename": names,
        }
    )
    return atomic_write_text(out, frame.to_csv(index=False, lineterminator="\n"))
