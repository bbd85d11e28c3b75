"""Training from scratch on the procedural world (the demo's controlled 2x2; issue-level docs in the README)."""
