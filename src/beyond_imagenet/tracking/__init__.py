"""Result records, MLflow logging and DVC metrics files (DESIGN.md, conventions for the MLOps parts)."""
