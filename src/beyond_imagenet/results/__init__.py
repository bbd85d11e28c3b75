"""The run's results as tables: one tidy row per metric with its interval, paired comparisons, rankings.

Built from the result records (and their bootstrap replicates) by the ``results`` stage; the report, MLflow and any
notebook read these tables rather than the records. ``headline`` picks about fifteen numbers per model from the
tidy table: the pipeline's DVC metrics.
"""
