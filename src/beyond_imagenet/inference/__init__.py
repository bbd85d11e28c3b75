"""The single GPU pass: every selected model over each dataset, cached to disk (docs/cache.md)."""
