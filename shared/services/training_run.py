"""The training activity: load the feature set, split it, train with live progress and
cancellation, then hand the model to evaluation and the registry.

Idempotent: the model id is fixed when the job is created, so a re-run after a crash
finds the registered model and stops, or trains again from scratch.
"""

from __future__ import annotations

import time
import uuid
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
from shared.services.training_request import ready_feature_set

if TYPE_CHECKING:
    from shared.db.session import Database
    from shared.ports import BlobStore
    from shared.services.registry import ModelRegistry

KIND = "training"
_PROGRESS_EVERY_S = 0.5


class TrainingRun:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        jobs: JobService,
        registry: ModelRegistry,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.jobs = jobs
        self.registry = registry
        self.handoff = ModelHandOff(blobs, registry)

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
            self.jobs.fail(jid, reason)
            return {"status": FAILED, "error": reason}

    def _load(self, fs: FeatureSet, target: str) -> tuple[Any, Any, Any, list[str]]:
        import numpy as np
        import pyarrow.parquet as pq

        from ml.training.trainer import TrainingDataError

        names = [f["name"] for f in fs.features or []]
        columns = [*names, "timestamp"] + ([target] if target else [])
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
            table.column("timestamp").cast("int64").to_numpy()
            if "timestamp" in available
            else None
        )
        return X, y, ts, names

    def _split(self, config: dict[str, Any], y: Any, ts: Any) -> tuple[Any, Any]:
        from ml.training.splits import stratified_split, time_split

        split = config["split"]
        if split["type"] != "time":
            return stratified_split(y, split["train_fraction"], config["seed"])
        if ts is None:
            raise ValueError("the feature set has no timestamp column for a time split")
        return time_split(
            ts,
            split["train_start"],
            split["train_end"],
            split["gap"],
            split["test_start"],
            split["test_end"],
        )

    def _train(self, job: TrainingJob, model_id: uuid.UUID) -> dict[str, Any]:
        import numpy as np

        from ml.training.algorithms import ALGORITHMS
        from ml.training.trainer import (
            TrainingCancelled,
            TrainingDataError,
            TrainingProgress,
            train_model,
        )

        config = dict(job.config or {})
        fs = ready_feature_set(self.db, str(job.feature_set_id))
        X, y, ts, names = self._load(fs, config["target_column"])
        if y is None:
            y = np.zeros(len(X))
            if ALGORITHMS[job.algorithm].supervised:
                raise TrainingDataError(
                    f"target column {config['target_column']!r} missing",
                    "target_column",
                )
        train_idx, test_idx = self._split(config, y, ts)
        live: dict[str, Any] = {"stage": "training"}
        self.jobs.record(job.id, progress=0.05, metrics={"live": dict(live)})

        last_write = [0.0]

        def on_progress(p: TrainingProgress) -> None:
            now = time.monotonic()
            if (
                now - last_write[0] < _PROGRESS_EVERY_S
                and p.iteration < p.total_iterations
            ):
                return
            last_write[0] = now
            live.update(
                iteration=p.iteration,
                total_iterations=p.total_iterations,
                train_loss=p.train_loss,
                val_loss=p.val_loss,
                val_auc=p.val_auc,
            )
            fraction = 0.05 + 0.8 * p.iteration / max(p.total_iterations, 1)
            status = self.jobs.record(
                job.id, progress=fraction, metrics={"live": dict(live)}
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

        model = train_model(
            job.algorithm,
            job.hyperparameters or {},
            X[train_idx],
            y[train_idx],
            X[test_idx],
            y[test_idx],
            names,
            on_progress=on_progress,
            should_stop=should_stop,
            seed=config["seed"],
        )
        evaluating = {"live": {**live, "stage": "evaluating"}}
        if self.jobs.record(job.id, progress=0.88, metrics=evaluating) == CANCELLED:
            raise TrainingCancelled()
        return self.handoff.evaluate_and_register(
            TrainedModel(
                job=job,
                model_id=model_id,
                feature_set=fs,
                model=model,
                X_test=X[test_idx],
                y_test=y[test_idx],
                n_train=len(train_idx),
            )
        )
