"""Analyses: pure functions over cached logits and features, registered by name (PROTOCOL §3-§10)."""
