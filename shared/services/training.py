"""Training jobs: validate a request, run it as a Durable orchestration, report progress,
and register the trained model with its ONNX export and test-set metrics.

The activity (``run``) is idempotent: the model id is fixed when the job is created, so a
re-run after a crash finds the registered model and stops, or trains again from scratch.
"""

from __future__ import annotations

import json
import logging
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from shared.bootstrap import AppContext
from shared.db.models import FeatureSet, MLModel, TrainingJob
from shared.db.types import utcnow
from shared.errors import Conflict, NotFound, ValidationFailed, field_error
from shared.services.pagination import Page, paginate
from shared.storage.local_copy import local_file
from shared.timefmt import elapsed_and_eta, iso

log = logging.getLogger(__name__)

ORCHESTRATOR = "training_orchestrator"
QUEUED, RUNNING, COMPLETED, FAILED = "QUEUED", "RUNNING", "COMPLETED", "FAILED"
CANCELLING, CANCELLED = "CANCELLING", "CANCELLED"
FINISHED = frozenset({COMPLETED, FAILED, CANCELLED})
ONNX_TOLERANCE = 1e-4
_PROGRESS_EVERY_S = 0.5


def _uuid(value: str | uuid.UUID, what: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"{what} {value!r} not found.") from None


def job_to_dict(job: TrainingJob) -> dict[str, Any]:
    """The spec's job progress response."""
    metrics = dict(job.metrics or {})
    live = metrics.pop("live", {})
    started, done = job.started_at, job.completed_at
    _, eta = elapsed_and_eta(started, done, job.progress, job.status == RUNNING)
    return {
        "job_id": str(job.id),
        "name": job.name,
        "algorithm": job.algorithm,
        "feature_set_id": str(job.feature_set_id) if job.feature_set_id else None,
        "status": job.status,
        "progress": round(job.progress, 4),
        "current_epoch": live.get("iteration"),
        "total_epochs": live.get("total_iterations"),
        "metrics": {
            "train_loss": live.get("train_loss"),
            "val_loss": live.get("val_loss"),
            "val_auc": live.get("val_auc"),
            **metrics,
        },
        "hyperparameters": job.hyperparameters,
        "config": job.config,
        "model_id": str(job.model_id) if job.model_id else None,
        "error_message": job.error_message,
        "created_at": iso(job.created_at),
        "started_at": iso(started),
        "completed_at": iso(done),
        "eta_seconds": eta,
    }


class TrainingService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    # -- request ----------------------------------------------------------------------

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        from ml.training.algorithms import (
            ALGORITHMS,
            HyperparameterError,
            validate_hyperparameters,
        )

        algorithm = request["algorithm"]
        if algorithm not in ALGORITHMS:
            raise ValidationFailed(
                f"Unknown algorithm {algorithm!r}; see GET /training/algorithms.",
                field_error("algorithm", f"one of {sorted(ALGORITHMS)}"),
            )
        try:
            params = validate_hyperparameters(
                algorithm, request.get("hyperparameters") or {}
            )
        except HyperparameterError as exc:
            raise ValidationFailed(
                str(exc), field_error(f"hyperparameters.{exc.field}", str(exc))
            ) from None
        fs = self._feature_set(request["feature_set_id"])
        target = request.get("target_column") or "is_fraud"
        self._check_target(fs, target, ALGORITHMS[algorithm].supervised)
        split = self._split_config(request)
        threshold = self._threshold_config(request)
        job_id, model_id = uuid.uuid4(), uuid.uuid4()
        with self.ctx.db.session(write=True) as s:
            s.add(
                TrainingJob(
                    id=job_id,
                    name=request["name"],
                    feature_set_id=fs.id,
                    algorithm=algorithm,
                    hyperparameters=params,
                    config={
                        "target_column": target,
                        "split": split,
                        "threshold": threshold,
                        "model_id": str(model_id),
                        "seed": int(request.get("seed") or 42),
                    },
                    status=QUEUED,
                    progress=0.0,
                )
            )
        self.ctx.launcher.launch(ORCHESTRATOR, str(job_id), {"job_id": str(job_id)})
        rows = fs.row_count or 0
        return {
            "job_id": str(job_id),
            "status": QUEUED,
            "estimated_time_seconds": round(5 + rows * (fs.feature_count or 50) * 2e-7),
        }

    def _feature_set(self, feature_set_id: str) -> FeatureSet:
        with self.ctx.db.session() as s:
            fs = s.get(FeatureSet, _uuid(feature_set_id, "Feature set"))
            if fs is None:
                raise NotFound(
                    f"Feature set {feature_set_id} not found.",
                    field_error("feature_set_id", "unknown feature set"),
                )
            if fs.status != "READY":
                raise Conflict(
                    f"Feature set {feature_set_id} is {fs.status}, not READY."
                )
            return fs

    @staticmethod
    def _check_target(fs: FeatureSet, target: str, supervised: bool) -> None:
        """The label must be the feature set's validated 0/1 label column, with both
        classes present: known from the feature set, so refused before any job runs."""
        config = fs.feature_config or {}
        label = config.get("label_column")
        if not supervised and target != label:
            return
        if target != label:
            raise ValidationFailed(
                f"target_column must be the feature set's 0/1 label column ({label!r}); "
                f"{target!r} is not a validated binary label.",
                field_error("target_column", "not the label column"),
            )
        summary = config.get("label_summary") or {}
        if supervised and (
            not summary.get("positives") or not summary.get("negatives")
        ):
            raise ValidationFailed(
                f"The label {target!r} has only one class in this feature set "
                f"({summary}); a supervised model needs fraud and non-fraud examples.",
                field_error("target_column", "one class only"),
            )

    @staticmethod
    def _split_config(request: dict[str, Any]) -> dict[str, Any]:
        split = request.get("split")
        if split:
            if split.get("type") != "time":
                raise ValidationFailed(
                    "split.type must be 'time' (or give train_test_split for a random split).",
                    field_error("split.type", "expected 'time'"),
                )
            needed = ["train_start", "train_end", "test_start", "test_end"]
            missing = [k for k in needed if not split.get(k)]
            if missing:
                raise ValidationFailed(
                    f"A time split needs {needed}.",
                    [
                        {"field": f"split.{k}", "message": "Required field"}
                        for k in missing
                    ],
                )
            return {
                "type": "time",
                "gap": split.get("gap") or "7d",
                **{k: split[k] for k in needed},
            }
        fraction = request.get("train_test_split", 0.8)
        if not isinstance(fraction, int | float) or not 0.1 <= float(fraction) <= 0.95:
            raise ValidationFailed(
                "train_test_split must be between 0.1 and 0.95.",
                field_error("train_test_split", "between 0.1 and 0.95"),
            )
        return {"type": "random", "train_fraction": float(fraction)}

    @staticmethod
    def _threshold_config(request: dict[str, Any]) -> dict[str, Any]:
        ratio = request.get("cost_ratio")
        if ratio is None:
            return {"rule": "max_f1"}
        if not isinstance(ratio, int | float) or ratio <= 0:
            raise ValidationFailed(
                "cost_ratio (cost of a missed fraud / cost of a false alarm) must be > 0.",
                field_error("cost_ratio", "must be > 0"),
            )
        return {"rule": "cost", "cost_ratio": float(ratio)}

    # -- reads ------------------------------------------------------------------------

    def get_row(self, job_id: str | uuid.UUID) -> TrainingJob:
        with self.ctx.db.session() as s:
            job = s.get(TrainingJob, _uuid(job_id, "Training job"))
            if job is None:
                raise NotFound(f"Training job {job_id} not found.")
            return job

    def get(self, job_id: str) -> dict[str, Any]:
        return job_to_dict(self.get_row(job_id))

    def list_jobs(
        self, page: int, page_size: int, status: str | None = None
    ) -> Page[dict[str, Any]]:
        query = select(TrainingJob).order_by(
            TrainingJob.created_at.desc(), TrainingJob.id
        )
        if status:
            query = query.where(TrainingJob.status == status.upper())
        with self.ctx.db.session() as s:
            result = paginate(s, query, page, page_size)
            items = [job_to_dict(j) for j in result.items]
        return Page(items, result.page, result.page_size, result.total)

    def cancel(self, job_id: str) -> dict[str, Any]:
        with self.ctx.db.session(write=True) as s:
            job = s.get(TrainingJob, _uuid(job_id, "Training job"))
            if job is None:
                raise NotFound(f"Training job {job_id} not found.")
            if job.status in FINISHED:
                raise Conflict(
                    f"Training job {job_id} has already finished ({job.status})."
                )
            if job.status == QUEUED:
                job.status, job.completed_at = CANCELLED, utcnow()
            else:
                job.status = CANCELLING
        self.ctx.launcher.cancel(str(job_id), "cancelled by the user")
        return self.get(job_id)

    # -- the activity -----------------------------------------------------------------

    def _update(self, job_id: uuid.UUID, **values: Any) -> str:
        """Write fields unless the job was cancelled meanwhile; returns the status."""
        with self.ctx.db.session(write=True) as s:
            job = s.get(TrainingJob, job_id)
            if job is None:
                raise NotFound(f"Training job {job_id} not found.")
            if job.status in (CANCELLING, CANCELLED):
                job.status, job.completed_at = CANCELLED, job.completed_at or utcnow()
                return CANCELLED
            for key, value in values.items():
                setattr(job, key, value)
            return job.status

    def fail(self, job_id: str, reason: str) -> None:
        with self.ctx.db.session(write=True) as s:
            job = s.get(TrainingJob, _uuid(job_id, "Training job"))
            if job is None or job.status in FINISHED:
                return
            job.status = CANCELLED if job.status == CANCELLING else FAILED
            job.error_message = None if job.status == CANCELLED else reason[:4000]
            job.completed_at = utcnow()

    def run(self, job_id: str) -> dict[str, Any]:
        from ml.training.splits import SplitError
        from ml.training.trainer import TrainingCancelled, TrainingDataError

        jid = _uuid(job_id, "Training job")
        job = self.get_row(jid)
        if job.status in FINISHED:
            return {"status": job.status}
        model_id = uuid.UUID(job.config["model_id"])  # type: ignore[index]
        with self.ctx.db.session() as s:
            if s.get(MLModel, model_id) is not None:
                self._update(
                    jid,
                    status=COMPLETED,
                    progress=1.0,
                    model_id=model_id,
                    completed_at=utcnow(),
                )
                return {"status": COMPLETED, "model_id": str(model_id)}
        if (
            self._update(jid, status=RUNNING, started_at=job.started_at or utcnow())
            == CANCELLED
        ):
            return {"status": CANCELLED}
        try:
            return self._train(job, model_id)
        except TrainingCancelled:
            self.fail(job_id, "cancelled")  # CANCELLING becomes CANCELLED
            return {"status": CANCELLED}
        except (TrainingDataError, SplitError, ValueError) as exc:
            field = getattr(exc, "field", None)
            reason = f"{exc} (field: {field})" if field else str(exc)
            self.fail(job_id, reason)
            return {"status": FAILED, "error": reason}

    def _load(self, fs: FeatureSet, target: str) -> tuple[Any, Any, Any, list[str]]:
        import numpy as np
        import pyarrow.parquet as pq

        from ml.training.trainer import TrainingDataError

        names = [f["name"] for f in fs.features or []]
        columns = [*names, "timestamp"] + ([target] if target else [])
        with local_file(self.ctx.blobs, fs.storage_path or "") as path:
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

    def _train(self, job: TrainingJob, model_id: uuid.UUID) -> dict[str, Any]:
        import numpy as np

        from ml.training.algorithms import ALGORITHMS
        from ml.training.metrics import choose_threshold, evaluate
        from ml.training.onnx_export import onnx_max_abs_diff, to_onnx
        from ml.training.splits import stratified_split, time_split
        from ml.training.trainer import TrainingCancelled, TrainingProgress, train_model

        config = dict(job.config or {})
        spec = ALGORITHMS[job.algorithm]
        fs = self._feature_set(str(job.feature_set_id))
        X, y, ts, names = self._load(fs, config["target_column"])
        if y is None:
            y = np.zeros(len(X))
            if spec.supervised:
                from ml.training.trainer import TrainingDataError

                raise TrainingDataError(
                    f"target column {config['target_column']!r} missing",
                    "target_column",
                )
        split = config["split"]
        if split["type"] == "time":
            if ts is None:
                raise ValueError(
                    "the feature set has no timestamp column for a time split"
                )
            train_idx, test_idx = time_split(
                ts,
                split["train_start"],
                split["train_end"],
                split["gap"],
                split["test_start"],
                split["test_end"],
            )
        else:
            train_idx, test_idx = stratified_split(
                y, split["train_fraction"], config["seed"]
            )
        live: dict[str, Any] = {"stage": "training"}
        self._update(job.id, progress=0.05, metrics={"live": dict(live)})

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
            if (
                self._update(job.id, progress=fraction, metrics={"live": dict(live)})
                == CANCELLED
            ):
                raise TrainingCancelled()

        last_check = [0.0, False]

        def should_stop() -> bool:
            now = time.monotonic()
            if now - float(last_check[0]) >= _PROGRESS_EVERY_S:
                last_check[0] = now
                status = self.get_row(job.id).status
                last_check[1] = status in (CANCELLING, CANCELLED)
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
        if (
            self._update(
                job.id, progress=0.88, metrics={"live": {**live, "stage": "evaluating"}}
            )
            == CANCELLED
        ):
            raise TrainingCancelled()
        scores = model.predict_scores(X[test_idx])
        rule = config["threshold"]
        threshold = choose_threshold(
            y[test_idx], scores, rule["rule"], rule.get("cost_ratio")
        )
        metrics = evaluate(y[test_idx], scores, threshold)
        onnx_bytes = to_onnx(model)
        sample = X[test_idx][: min(len(test_idx), 20_000)]
        onnx_diff = float(onnx_max_abs_diff(model, onnx_bytes, sample))
        importance = model.feature_importance()
        return self._register(
            job,
            model_id,
            fs,
            model,
            onnx_bytes,
            onnx_diff,
            metrics,
            threshold,
            importance,
            len(train_idx),
            len(test_idx),
        )

    def _register(
        self,
        job: TrainingJob,
        model_id: uuid.UUID,
        fs: FeatureSet,
        model: Any,
        onnx_bytes: bytes,
        onnx_diff: float,
        metrics: dict[str, Any],
        threshold: float,
        importance: dict[str, float],
        n_train: int,
        n_test: int,
    ) -> dict[str, Any]:
        prefix = f"models/{model_id}/"
        metadata = {
            "model_id": str(model_id),
            "algorithm": job.algorithm,
            "features": model.feature_names,
            "threshold": threshold,
            "score_transform": model.score_transform,
            "feature_set_id": str(fs.id),
            "feature_config": fs.feature_config,
            "training_data": {
                "feature_set_id": str(fs.id),
                "dataset_id": str(fs.dataset_id),
                "dataset_version": fs.dataset_version,
                "rows_train": n_train,
                "rows_test": n_test,
            },
            "onnx_max_abs_diff": onnx_diff,
            "library_versions": _library_versions(),
        }
        try:
            with tempfile.TemporaryDirectory(prefix="sh-model-") as tmp:
                native = Path(tmp) / "model.native"
                model.save_native(native)
                self.ctx.blobs.upload_file(prefix + "model.native", native)
            self.ctx.blobs.put_bytes(prefix + "model.onnx", onnx_bytes)
            self.ctx.blobs.put_bytes(
                prefix + "metadata.json", json.dumps(metadata).encode()
            )
            for attempt in range(5):  # two jobs of one name may race for a version
                try:
                    with self.ctx.db.session(write=True) as s:
                        count = s.scalar(
                            select(func.count()).where(MLModel.name == job.name)
                        )
                        version = f"{int(count or 0) + 1}.0"
                        s.add(
                            MLModel(
                                id=model_id,
                                name=job.name,
                                version=version,
                                algorithm=job.algorithm,
                                hyperparameters=job.hyperparameters,
                                metrics={
                                    k: v
                                    for k, v in metrics.items()
                                    if not k.endswith("_curve")
                                },
                                storage_path=prefix,
                                feature_set_id=fs.id,
                                details={
                                    "threshold": threshold,
                                    "onnx_max_abs_diff": onnx_diff,
                                    "onnx_ok": onnx_diff <= ONNX_TOLERANCE,
                                    "feature_importance": importance,
                                    "roc_curve": metrics.get("roc_curve"),
                                    "pr_curve": metrics.get("pr_curve"),
                                    "features": model.feature_names,
                                    "score_transform": model.score_transform,
                                    "training_job_id": str(job.id),
                                    "training_data": metadata["training_data"],
                                    "library_versions": metadata["library_versions"],
                                },
                                status="TRAINED",
                            )
                        )
                        job_row = s.get(TrainingJob, job.id)
                        assert job_row is not None
                        job_row.status, job_row.progress = COMPLETED, 1.0
                        job_row.model_id, job_row.completed_at = model_id, utcnow()
                        job_row.metrics = {
                            "live": (job_row.metrics or {}).get("live", {}),
                            **{
                                k: v
                                for k, v in metrics.items()
                                if not k.endswith("_curve")
                            },
                        }
                    break
                except IntegrityError:
                    with self.ctx.db.session() as s:
                        if s.get(MLModel, model_id) is not None or attempt == 4:
                            raise
        except BaseException:
            with self.ctx.db.session() as s:
                registered = s.get(MLModel, model_id) is not None
            if registered:  # an earlier run of this activity won; its blobs stay
                return {"status": COMPLETED, "model_id": str(model_id)}
            self.ctx.blobs.delete_prefix(prefix)
            raise
        log.info("training job %s registered model %s", job.id, model_id)
        return {"status": COMPLETED, "model_id": str(model_id)}


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in (
        "numpy",
        "scikit-learn",
        "xgboost",
        "lightgbm",
        "onnx",
        "onnxruntime",
        "onnxmltools",
        "skl2onnx",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
