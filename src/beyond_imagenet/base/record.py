"""The one result record: a (model, analysis, dataset) result with its metrics, settings and provenance.

Every analysis of the ImageNet family, the CKA stage and every VTAB probe returns these records; ``records``
stores them and ``tracking`` logs them (docs/architecture.md, principle 8).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class ResultRecord:
    """One model x analysis x dataset result: namespaced metrics, the data behind figures, and provenance.

    Attributes:
        analysis: the registered analysis name (``calibration``, ``vtab_probe``, ...).
        model_id: the catalogue id of the model.
        dataset: the dataset (or VTAB task) the metrics are about.
        metrics: namespaced scalar metrics, e.g. ``calibration/imagenet_val/ece``.
        params: the analysis settings that produced the metrics.
        details: the data behind tables and figures (bins, curves, per-class values).
        provenance: where the result came from (model, weights, preprocessing, data manifest, versions, git sha).
        artifacts: files written with the record (figures, matrices, predictions).
    """

    analysis: str
    model_id: str
    dataset: str
    metrics: dict[str, float]
    params: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """A JSON-serialisable copy."""
        return asdict(self)
