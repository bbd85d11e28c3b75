"""VTAB data for the linear probes of paper §6 (docs/transfer.md §3, §4; docs/vtab.md), from tables to pixels.

Lower modules never import higher ones:

- ``labels``: the derived-label rules of §3.2; ``sources``: the image sources (``SOURCES``); ``slices``: percent
  slices and index ranges;
- ``tasks``: ``TaskSpec``, the task table and the presets; ``split_rules``: split indices, sizes, sample ids and
  ``check_disjoint``;
- ``readers``: low-level image readers (parquet rows, tar members, CIFAR / SVHN arrays); ``samples``:
  ``VtabSample`` and ``SourceSplit``; ``carve``: the stratified val carved from train;
- ``layouts``: the on-disk layouts (``tfds_parquet``, ``wds``, ``torchvision``) behind one interface
  (``layouts.base.VtabLayout``), registered by discovery; ``get_layout``, ``expected_layout``,
  ``check_task_on_disk``;
- ``writers``: write the ``tfds_parquet`` and ``wds`` layouts (tests, the demo, tfds conversions).
"""
