"""What a model brings to monitoring: its training feature baseline (stored with the
model at ``models/{id}/drift_baseline.json``, so it outlives the feature set), its
features, threshold, training metrics and score calibration.

A model registered before baselines were stored gets one on its first audit, built from
its feature set's rows (training and test rows alike: the split is not kept) and stored
then. A model with neither a stored baseline nor its feature set's data: 409.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import Conflict
from shared.ports import BlobNotFound
from shared.services.registry import get_model

if TYPE_CHECKING:
    import numpy.typing as npt

    from ml.monitoring import Baseline, Calibrator, Metrics
    from shared.ports import BlobStore, Transactions


def baseline_path(model_id: uuid.UUID | str) -> str:
    return f"models/{model_id}/drift_baseline.json"


@dataclass(frozen=True)
class MonitoredModel:
    id: uuid.UUID
    name: str
    version: str
    features: tuple[str, ...]
    threshold: float
    metrics: dict[str, Any]
    calibration: dict[str, Any] | None  # isotonic knots (ml.monitoring.Calibrator)
    feature_set_path: str | None

    def training_metrics(self) -> Metrics:
        from ml.monitoring import Metrics

        m = self.metrics

        def value(key: str) -> float | None:
            found = m.get(key)
            return float(found) if isinstance(found, int | float) else None

        return Metrics(
            count=int(m.get("support") or 0),
            precision=value("precision"),
            recall=value("recall"),
            auc=value("auc_roc"),
        )

    def calibrator(self) -> Calibrator | None:
        """Scores are taken as calibrated probabilities unless the model keeps a
        calibrator apart from its score."""
        from ml.monitoring import Calibrator

        return (
            None if self.calibration is None else Calibrator.from_dict(self.calibration)
        )

    def probabilities(self, scores: npt.ArrayLike) -> Any:
        import numpy as np

        calibrator = self.calibrator()
        raw = np.asarray(scores, dtype=np.float64)
        return raw if calibrator is None else calibrator.apply(raw)


def monitored_model(uow: Transactions, model_id: str | uuid.UUID) -> MonitoredModel:
    """The model (404 when unknown) as monitoring reads it."""
    with uow() as tx:
        model = get_model(tx.models, model_id)
        details = dict(model.details or {})
        fs = (
            tx.feature_sets.get(model.feature_set_id)
            if model.feature_set_id is not None
            else None
        )
        calibration = details.get("calibrator")
        return MonitoredModel(
            id=model.id,
            name=model.name,
            version=model.version,
            features=tuple(details.get("features") or ()),
            threshold=float(details.get("threshold", 0.5)),
            metrics=dict(model.metrics or {}),
            calibration=dict(calibration) if isinstance(calibration, dict) else None,
            feature_set_path=fs.storage_path if fs is not None else None,
        )


class DriftBaselines:
    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    def store(
        self,
        model_id: uuid.UUID | str,
        x_train: npt.ArrayLike,
        feature_names: list[str],
    ) -> Baseline:
        """Build the baseline of a training matrix and store it with the model."""
        from ml.monitoring import build_baseline

        baseline = build_baseline(x_train, feature_names)
        self.blobs.put_bytes(
            baseline_path(model_id), json.dumps(baseline.to_dict()).encode()
        )
        return baseline

    def load(self, model_id: uuid.UUID | str) -> Baseline | None:
        from ml.monitoring import Baseline

        try:
            raw = self.blobs.get_bytes(baseline_path(model_id))
        except BlobNotFound:
            return None
        return Baseline.from_dict(json.loads(raw))

    def available(self, model: MonitoredModel) -> bool:
        """A baseline is stored, or can be built from the feature set (else 409)."""
        if not model.features:
            raise Conflict(f"Model {model.id} keeps no feature list to monitor.")
        if self.blobs.exists(baseline_path(model.id)):
            return True
        if model.feature_set_path and self.blobs.exists(model.feature_set_path):
            return True
        raise Conflict(
            f"Model {model.id} has no drift baseline and its feature set's data is "
            "gone: nothing to compare its predictions with."
        )

    def ensure(self, model: MonitoredModel) -> Baseline:
        """The stored baseline, or one built from the feature set and stored now."""
        import numpy as np
        import pyarrow.parquet as pq

        from shared.adapters.blobs.local_copy import local_file

        found = self.load(model.id)
        if found is not None:
            return found
        self.available(model)
        assert model.feature_set_path is not None
        names = list(model.features)
        with local_file(self.blobs, model.feature_set_path) as path:
            table = pq.read_table(path, columns=names)
        matrix = np.column_stack(
            [table.column(n).to_numpy().astype(np.float32, copy=False) for n in names]
        )
        return self.store(model.id, matrix, names)
