"""VTAB linear probes (paper §6, Table 3; docs/transfer.md): the probe, its search, the probe stage's steps.

``linear`` (the probe and its fit), ``study`` and ``search`` (weight-decay selection on val, refit, test once),
``splits`` (features in memory), ``tasks`` (which tasks run and their split rows), ``run`` (features -> probes ->
records) and ``aggregate`` (Table 3, Fig. 6 bottom, metrics.json).
"""
