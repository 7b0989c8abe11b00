"""From a trained, evaluated model to a registered one: the ONNX export checked against
the native model, the files in blob storage, then the registry entry and the job's
completion in one transaction. The threshold and the test metrics come with the model
(`ml.training.pipeline`: chosen on validation, the test rows scored once)."""

from __future__ import annotations

import json
import logging
import platform
import tempfile
import uuid
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.db.models import FeatureSet, TrainingJob
from shared.services.jobs import COMPLETED, mark_completed
from shared.services.registry import ONNX_TOLERANCE, ModelRegistry, NewModel

if TYPE_CHECKING:
    from shared.ports import BlobStore, UnitOfWork
    from shared.services.bias_audits import BiasAuditHook
    from shared.services.drift_baselines import DriftBaselines
    from shared.services.model_evaluation import ModelEvaluations

log = logging.getLogger(__name__)

_LIBRARIES = (
    "numpy",
    "scikit-learn",
    "xgboost",
    "lightgbm",
    "onnx",
    "onnxruntime",
    "onnxmltools",
    "skl2onnx",
)
_ONNX_CHECK_ROWS = 20_000


@dataclass(frozen=True)
class TrainedModel:
    """A training job's model and its test period: the rows (features, labels, the
    calibrated scores served, and ids, users and epoch-ns timestamps when the feature
    set carries them), the threshold chosen on validation and the test metrics."""

    job: TrainingJob
    model_id: uuid.UUID
    feature_set: FeatureSet
    model: Any
    X_test: Any
    y_test: Any
    X_train: Any  # the training period's rows: the drift baseline's sample
    n_train: int
    threshold: float
    metrics: dict[str, Any]
    test_scores: Any
    test_transaction_ids: Any = None
    test_user_ids: Any = None
    test_timestamps_ns: Any = None


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


class ModelHandOff:
    def __init__(
        self,
        blobs: BlobStore,
        registry: ModelRegistry,
        evaluations: ModelEvaluations,
        baselines: DriftBaselines,
        bias_audit: BiasAuditHook | None = None,
    ) -> None:
        self.blobs = blobs
        self.registry = registry
        self.evaluations = evaluations
        self.baselines = baselines
        # the test_set bias audit of a model being registered (never raises)
        self.bias_audit = bias_audit

    def register_model(self, trained: TrainedModel) -> dict[str, Any]:
        """Export to ONNX, check it against the native model, store and register."""
        # ml.training loads scikit-learn: imported on first use, not with the API
        from ml.scoring.transform import uncalibrated
        from ml.training.onnx_export import onnx_max_abs_diff, to_onnx

        model = trained.model
        onnx_bytes = to_onnx(model)
        sample = trained.X_test[: min(len(trained.X_test), _ONNX_CHECK_ROWS)]
        # the raw model's agreement: the calibration is the same arithmetic on both
        onnx_diff = float(
            onnx_max_abs_diff(
                model, onnx_bytes, sample, uncalibrated(model.score_transform)
            )
        )
        return self.register(
            trained, onnx_bytes, onnx_diff, trained.metrics, trained.threshold
        )

    def register(
        self,
        trained: TrainedModel,
        onnx_bytes: bytes,
        onnx_diff: float,
        metrics: dict[str, Any],
        threshold: float,
    ) -> dict[str, Any]:
        """Store the files, then register the model and complete the job together. A
        failure removes the files, unless an earlier run of the activity registered the
        model (its files stay)."""
        job, model, fs, model_id = (
            trained.job,
            trained.model,
            trained.feature_set,
            trained.model_id,
        )
        prefix = f"models/{model_id}/"
        training_data = {
            "feature_set_id": str(fs.id),
            "dataset_id": str(fs.dataset_id),
            "dataset_version": fs.dataset_version,
            "rows_train": trained.n_train,
            "rows_test": len(trained.X_test),
        }
        versions = library_versions()
        metadata = {
            "model_id": str(model_id),
            "algorithm": job.algorithm,
            "features": model.feature_names,
            "threshold": threshold,
            "score_transform": model.score_transform,
            "feature_set_id": str(fs.id),
            "feature_config": fs.feature_config,
            "training_data": training_data,
            "onnx_max_abs_diff": onnx_diff,
            "library_versions": versions,
        }
        scalars = {k: v for k, v in metrics.items() if not k.endswith("_curve")}
        new = NewModel(
            id=model_id,
            name=job.name,
            algorithm=job.algorithm,
            hyperparameters=model.params,
            metrics=scalars,
            storage_path=prefix,
            feature_set_id=fs.id,
            details={
                "threshold": threshold,
                "onnx_max_abs_diff": onnx_diff,
                "onnx_ok": onnx_diff <= ONNX_TOLERANCE,
                "feature_importance": model.feature_importance(),
                "roc_curve": metrics.get("roc_curve"),
                "pr_curve": metrics.get("pr_curve"),
                "features": model.feature_names,
                "score_transform": model.score_transform,
                "training_job_id": str(job.id),
                "training_data": training_data,
                "library_versions": versions,
            },
        )

        def complete_job(tx: UnitOfWork) -> None:
            row = tx.jobs.get_training(job.id)
            assert row is not None
            row.model_id = model_id
            row.hyperparameters = model.params  # the search's choice, when it ran
            row.metrics = {"live": (row.metrics or {}).get("live", {}), **scalars}
            mark_completed(
                row,
                {
                    "status": COMPLETED,
                    "model_id": str(model_id),
                    "warnings": scalars.get("warnings", []),
                },
            )

        try:
            with tempfile.TemporaryDirectory(prefix="sh-model-") as tmp:
                native = Path(tmp) / "model.native"
                model.save_native(native)
                self.blobs.upload_file(prefix + "model.native", native)
            self.blobs.put_bytes(prefix + "model.onnx", onnx_bytes)
            self.blobs.put_bytes(
                prefix + "metadata.json", json.dumps(metadata).encode()
            )
            # precision@k and user precision@k join the metrics the registry stores
            scalars.update(self._store_evaluation(trained))
            # the test set's bias audit, registered with the model (never raises)
            bias = (
                None
                if self.bias_audit is None
                else self.bias_audit(model_id, fs.storage_path, threshold)
            )
            if bias is not None:
                new.details["bias_audit"] = bias.summary
            # what drift audits compare live traffic with, kept with the model
            self.baselines.store(model_id, trained.X_train, model.feature_names)
            self.registry.register(new, also=complete_job)
        except BaseException:
            if self.registry.is_registered(model_id):
                return {"status": COMPLETED, "model_id": str(model_id)}
            self.blobs.delete_prefix(prefix)
            raise
        if bias is not None:
            bias.store()
        log.info("training job %s registered model %s", job.id, model_id)
        return {"status": COMPLETED, "model_id": str(model_id)}

    def _store_evaluation(self, trained: TrainedModel) -> dict[str, Any]:
        """The test rows beside the model (GET /models/{id}/evaluation); none when the
        feature set lacks transaction ids, users or timestamps."""
        from shared.services.model_evaluation import EvaluationRows

        if (
            trained.test_transaction_ids is None
            or trained.test_user_ids is None
            or trained.test_timestamps_ns is None
        ):
            return {}
        rows = EvaluationRows(
            transaction_id=trained.test_transaction_ids,
            user_id=trained.test_user_ids,
            timestamp=trained.test_timestamps_ns,
            label=trained.y_test,
            score=trained.test_scores,
        )
        return dict(self.evaluations.store(trained.model_id, rows))
