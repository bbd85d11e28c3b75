"""Datasets: on-disk layouts, robust decoding, label spaces, registry and the demo generator (PROTOCOL §2)."""
