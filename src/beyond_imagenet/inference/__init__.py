"""Every model pass (docs/cache.md): the cached logits and features of each dataset and sweep point, the
VTAB feature caches and the CKA Gram pass, all through one Lightning predict loop.
"""
