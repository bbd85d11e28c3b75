"""Transferability (paper §6, Table 3): VTAB linear probes on cached features (docs TRANSFER.md).

- ``probe``: ``ProbeConfig``, ``LinearProbe`` (Lightning), ``fit_probe``, ``predict``, ``evaluate``;
- ``search``: weight-decay selection on val (seeded TPE or CLIP_benchmark's coarse-to-fine grid) in a resumable
  SQLite Optuna study, then ``refit_and_test`` on train+val -> test (``tune_and_evaluate`` chains them);
- ``splits``: ``FeatureSplit`` and ``check_disjoint``.

Nothing here imports mlflow; trial logging goes through the search's ``on_trial`` hook.
"""
