"""Every model pass of the project, all through one Lightning predict loop (docs/cache.md).

The passes are: the cached logits and features of each dataset and sweep point, the VTAB feature caches and the
CKA Gram pass.
"""
