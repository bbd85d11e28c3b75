"""Pure metric functions over arrays (docs/protocol.md §3-§10, docs/transfer.md §2.5, §5). No file I/O, no config.

Accuracy, calibration, robustness, ImageNet-X, shape bias, PUG, invariance, CKA, probe metrics, Table 3.
"""
