"""The lowest layer: errors, atomic files, hashing, provenance, progress lines, the params schema, the record type.

Nothing here imports another package of ``beyond_imagenet`` (docs/architecture.md).
"""
