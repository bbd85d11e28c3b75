"""Transferability (paper §6, Table 3, Fig. 6 bottom): VTAB linear probes on cached features (docs/vtab.md).

Data flow, one module per step:

- ``tasks``: the 19 tasks, the ``vtab19`` / ``clipbench19`` presets, split rules, derived labels, on-disk checks;
- ``sources`` (+ ``torchvision_layout``): readers of the ``tfds_parquet``, ``wds`` and ``torchvision`` layouts,
  task labels and split rows (val carved where a layout has none); ``writers`` writes the first two formats;
- ``features``: one float16 feature cache per (model, image source, split) through the inference engine;
- ``probe``: ``LinearProbe`` (Lightning), ``fit_probe``, ``predict``, ``evaluate``;
- ``search``: weight-decay selection on val (seeded TPE or CLIP_benchmark's coarse-to-fine grid) in a resumable
  SQLite Optuna study, then ``refit_and_test`` on train+val -> test (``tune_and_evaluate`` chains them);
- ``splits``: ``FeatureSplit`` and ``check_disjoint``;
- ``aggregate``: Table 3 (Overall = mean of the 19 tasks, missing tasks named), BoB z-scores, Fig. 6 bottom;
- ``run``: the ``vtab_features`` and ``probe`` stages (plan -> features -> probes -> aggregate).

Nothing here imports mlflow; trial logging goes through the search's ``on_trial`` hook (``tracking.probe_runs``).
"""
