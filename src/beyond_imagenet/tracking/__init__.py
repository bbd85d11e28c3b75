"""Result records, MLflow logging and DVC metrics files (docs/architecture.md, conventions for the MLOps parts)."""
