"""The training activity: load the feature set, split it, train with live progress and
cancellation, then hand the model to evaluation and the registry.

Idempotent: the model id is fixed when the job is created, so a re-run after a crash
finds the registered model and stops, or trains again from scratch.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.adapters.blobs.local_copy import local_file
from shared.db.models import FeatureSet, TrainingJob
from shared.db.types import utcnow
from shared.services.jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
    FINISHED,
    JobCancelled,
    JobService,
    job_uuid,
)
from shared.services.training_handoff import ModelHandOff, TrainedModel
from shared.services.training_mitigation import attribute_column, mitigate_outcome
from shared.services.training_request import ready_feature_set

if TYPE_CHECKING:
    from ml.training.pipeline import FitPlan
    from ml.training.splits import SplitPlan
    from shared.ports import BlobStore, Transactions
    from shared.services.bias_audits import BiasAuditHook
    from shared.services.drift_baselines import DriftBaselines
    from shared.services.model_evaluation import ModelEvaluations
    from shared.services.registry import ModelRegistry

KIND = "training"
_PROGRESS_EVERY_S = 0.5
# carried next to the features (shared/services/features.py): kept with the test rows
_ROW_COLUMNS = ("transaction_id", "user_id")


@dataclass
class FeatureRows:
    """A feature set as training reads it: the matrix in feature order, the label, the
    epoch-ns timestamps, the carried row ids (transaction_id, user_id) when present and
    the rows' sample weights when asked for."""

    X: Any
    y: Any
    timestamps_ns: Any
    names: list[str]
    ids: dict[str, Any] = field(default_factory=dict)
    weight: Any = None


class TrainingRun:
    def __init__(
        self,
        uow: Transactions,
        blobs: BlobStore,
        jobs: JobService,
        registry: ModelRegistry,
        evaluations: ModelEvaluations,
        baselines: DriftBaselines,
        bias_audit: BiasAuditHook | None = None,
    ) -> None:
        self.uow = uow
        self.blobs = blobs
        self.jobs = jobs
        self.registry = registry
        self.handoff = ModelHandOff(blobs, registry, evaluations, baselines, bias_audit)

    def row(self, job_id: str | uuid.UUID) -> TrainingJob:
        job = self.jobs.get_row(job_id, KIND)
        assert isinstance(job, TrainingJob)
        return job

    def run(self, job_id: str) -> dict[str, Any]:
        # ml.training loads scikit-learn: imported on first use, not with the API
        from ml.training.splits import SplitError
        from ml.training.trainer import TrainingCancelled, TrainingDataError

        jid = job_uuid(job_id, "Training job")
        job = self.row(jid)
        if job.status in FINISHED:
            return {"status": job.status}
        model_id = uuid.UUID((job.config or {})["model_id"])
        if self.registry.is_registered(model_id):
            self.jobs.record(
                jid,
                status=COMPLETED,
                progress=1.0,
                model_id=model_id,
                completed_at=utcnow(),
            )
            return {"status": COMPLETED, "model_id": str(model_id)}
        try:
            self.jobs.start(jid)
        except JobCancelled:
            return {"status": CANCELLED}
        try:
            return self._train(job, model_id)
        except TrainingCancelled:
            self.jobs.fail(jid, "cancelled")  # CANCELLING becomes CANCELLED
            return {"status": CANCELLED}
        except (TrainingDataError, SplitError, ValueError) as exc:
            field = getattr(exc, "field", None)
            reason = f"{exc} (field: {field})" if field else str(exc)
            self.jobs.fail(jid, reason)  # logs the job id and the reason
            return {"status": FAILED, "error": reason}

    def load_rows(
        self, fs: FeatureSet, target: str, weight_column: str | None = None
    ) -> FeatureRows:
        """The feature set's rows as training (and a retraining's holdout) reads them."""
        import numpy as np
        import pyarrow.parquet as pq

        from ml.training.splits import arrow_timestamps_ns
        from ml.training.trainer import TrainingDataError

        names = [f["name"] for f in fs.features or []]
        columns = [*names, "timestamp", *_ROW_COLUMNS] + ([target] if target else [])
        columns += [weight_column] if weight_column else []
        with local_file(self.blobs, fs.storage_path or "") as path:
            available = set(pq.ParquetFile(path).schema_arrow.names)
            table = pq.read_table(path, columns=[c for c in columns if c in available])
        X = np.column_stack(
            [table.column(n).to_numpy().astype(np.float32, copy=False) for n in names]
        )
        y = None
        if target in available:
            raw = table.column(target).to_numpy(zero_copy_only=False)
            try:
                y = np.asarray(raw, dtype=np.float64)
            except (TypeError, ValueError):
                raise TrainingDataError(
                    f"target column {target!r} is not numeric 0/1", "target_column"
                ) from None
        ts = (
            arrow_timestamps_ns(table.column("timestamp"))
            if "timestamp" in available
            else None
        )
        ids = {
            c: np.asarray(table.column(c).to_numpy(zero_copy_only=False), dtype=object)
            for c in _ROW_COLUMNS
            if c in available
        }
        weight = None
        if weight_column:
            if weight_column not in available:
                raise TrainingDataError(
                    f"sample weight column {weight_column!r} missing",
                    "sample_weight_column",
                )
            weight = table.column(weight_column).to_numpy().astype(np.float64)
        return FeatureRows(X, y, ts, names, ids, weight)

    @staticmethod
    def split_plan(config: dict[str, Any]) -> SplitPlan:
        """The stored split config as the splitter takes it (older jobs' too)."""
        from ml.training.splits import SplitPlan

        split = config["split"]
        windows = None
        if split["type"] == "time":
            windows = tuple(
                split[k] for k in ("train_start", "train_end", "test_start", "test_end")
            )
        return SplitPlan(
            kind=split["type"],
            gap=split.get("gap") or "7d",
            test_fraction=split.get("test_fraction", 0.2),
            validation_fraction=split.get("validation_fraction", 0.2),
            train_fraction=split.get("train_fraction", 0.8),
            windows=windows,
            seed=config["seed"],
        )

    @staticmethod
    def fit_plan(job: TrainingJob, config: dict[str, Any]) -> FitPlan:
        from ml.training.pipeline import FitPlan, ThresholdRule

        rule = dict(config["threshold"])
        if "cost_ratio" in rule:  # jobs recorded before the two costs
            rule = {"rule": "cost", "cost_missed_fraud": rule["cost_ratio"]}
        searching = "search_seconds" in config
        return FitPlan(
            algorithm=job.algorithm,
            hyperparameters=None if searching else dict(job.hyperparameters or {}),
            threshold=ThresholdRule(**rule),
            search_seconds=float(config.get("search_seconds", 0.0)),
            seed=config["seed"],
        )

    def _train(self, job: TrainingJob, model_id: uuid.UUID) -> dict[str, Any]:
        import numpy as np

        from ml.training.algorithms import ALGORITHMS
        from ml.training.pipeline import fit_and_evaluate
        from ml.training.splits import make_splits
        from ml.training.trainer import (
            TrainingCancelled,
            TrainingDataError,
            TrainingProgress,
        )

        config = dict(job.config or {})
        fs = ready_feature_set(self.uow, str(job.feature_set_id))
        data = self.load_rows(
            fs, config["target_column"], config.get("sample_weight_column")
        )
        X, y, ts = data.X, data.y, data.timestamps_ns
        if y is None:
            y = np.zeros(len(X))
            if ALGORITHMS[job.algorithm].supervised:
                raise TrainingDataError(
                    f"target column {config['target_column']!r} missing",
                    "target_column",
                )
        splits = make_splits(self.split_plan(config), ts, y)
        live: dict[str, Any] = {"stage": "training"}
        self.jobs.record(job.id, progress=0.05, metrics={"live": dict(live)})

        last_write = [0.0]

        def on_progress(p: TrainingProgress, trial: int, trials: int) -> None:
            now = time.monotonic()
            done = p.iteration >= p.total_iterations
            if now - last_write[0] < _PROGRESS_EVERY_S and not done:
                return
            last_write[0] = now
            live.update(
                iteration=p.iteration,
                total_iterations=p.total_iterations,
                train_loss=p.train_loss,
                val_loss=p.val_loss,
                val_auc=p.val_auc,
            )
            if trials > 1:
                live.update(trial=trial + 1, trials=trials)
            share = (trial + p.iteration / max(p.total_iterations, 1)) / trials
            status = self.jobs.record(
                job.id, progress=0.05 + 0.8 * share, metrics={"live": dict(live)}
            )
            if status == CANCELLED:
                raise TrainingCancelled()

        last_check = [0.0, False]

        def should_stop() -> bool:
            now = time.monotonic()
            if now - float(last_check[0]) >= _PROGRESS_EVERY_S:
                last_check[0] = now
                last_check[1] = self.jobs.is_stopping(job.id)
            return bool(last_check[1])

        outcome = fit_and_evaluate(
            self.fit_plan(job, config),
            X,
            y,
            splits,
            data.names,
            on_progress=on_progress,
            should_stop=should_stop,
            sample_weight=data.weight,
        )
        if config.get("fairness_mitigation"):
            column = config["fairness_mitigation"]["column"]
            groups = attribute_column(self.blobs, fs, column)
            mitigate_outcome(config, groups, X, y, splits, outcome)
        evaluating = {"live": {**live, "stage": "evaluating"}}
        if self.jobs.record(job.id, progress=0.88, metrics=evaluating) == CANCELLED:
            raise TrainingCancelled()
        test = splits.test
        ids = data.ids
        return self.handoff.register_model(
            TrainedModel(
                job=job,
                model_id=model_id,
                feature_set=fs,
                model=outcome.model,
                X_test=X[test],
                y_test=y[test],
                X_train=X[splits.train],
                n_train=len(splits.fit),
                threshold=outcome.threshold,
                metrics=outcome.metrics,
                test_scores=outcome.test_scores,
                test_transaction_ids=(
                    ids["transaction_id"][test] if "transaction_id" in ids else None
                ),
                test_user_ids=ids["user_id"][test] if "user_id" in ids else None,
                test_timestamps_ns=ts[test] if ts is not None else None,
            )
        )
