"""Backtests: score a dataset's time window with a registered model, as a job.

The job computes the dataset's batch features with the model's feature configuration
(history before the window included, so windowed aggregates are as they were online),
scores the window with the model's ONNX export and writes ``backtests/{job id}/
scores.parquet`` (transaction_id, timestamp, user_id, score, label when the dataset has
one). ``GET /jobs/{id}`` names the file in its result.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import Conflict, ValidationFailed, field_error

if TYPE_CHECKING:
    import numpy.typing as npt

    from ml.features.window import WindowFeatures
    from shared.ports import BlobStore, JobLauncher, Transactions
    from shared.services.datasets import DatasetService
    from shared.services.jobs import JobService

log = logging.getLogger(__name__)

JOB_KIND = "backtest"
ORCHESTRATOR = "backtest_orchestrator"
_SECONDS_PER_ROW = 10e-6  # bench/bench_backtest.py, rounded up
_SCORE_CHUNK = 250_000  # rows per ONNX call; progress (and a cancel) between calls


def scores_path(job_id: uuid.UUID | str) -> str:
    return f"backtests/{job_id}/scores.parquet"


@dataclass(frozen=True)
class BacktestCommand:
    model_id: str
    dataset_id: str
    window_start: datetime | None = None
    window_end: datetime | None = None
    dataset_version: str | None = None  # default: the latest


@dataclass(frozen=True)
class _Model:
    storage_path: str
    features: list[str]
    score_transform: dict[str, Any]
    feature_config: dict[str, Any]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _ns(value: str | None) -> int | None:
    if value is None:
        return None
    since = datetime.fromisoformat(value) - datetime(1970, 1, 1, tzinfo=UTC)
    return since // timedelta(microseconds=1) * 1000


class Backtests:
    def __init__(
        self,
        uow: Transactions,
        blobs: BlobStore,
        jobs: JobService,
        datasets: DatasetService,
        launcher: JobLauncher,
    ) -> None:
        self.uow = uow
        self.blobs = blobs
        self.jobs = jobs
        self.datasets = datasets
        self.launcher = launcher

    def request(self, cmd: BacktestCommand) -> dict[str, Any]:
        """Validate, record the job and hand it to the launcher; the 202 body."""
        start, end = _utc(cmd.window_start), _utc(cmd.window_end)
        if start is not None and end is not None and end <= start:
            raise ValidationFailed(
                "window_end must be after window_start.",
                field_error("window_end", "must be after window_start"),
            )
        dataset = self.datasets.version(cmd.dataset_id, cmd.dataset_version)
        self._model(cmd.model_id)
        job_id = uuid.uuid4()
        payload = {
            "job_id": str(job_id),
            "model_id": str(uuid.UUID(cmd.model_id)),
            "dataset_id": str(dataset.dataset_id),
            "dataset_version": dataset.version,
            "dataset_path": dataset.storage_path,
            "window_start": _iso(start),
            "window_end": _iso(end),
        }
        self.jobs.create(JOB_KIND, payload, job_id)
        self.launcher.launch(ORCHESTRATOR, str(job_id), {"job_id": str(job_id)})
        return {
            "job_id": str(job_id),
            "status": "PENDING",
            "estimated_time_seconds": round(2 + dataset.row_count * _SECONDS_PER_ROW),
        }

    def _model(self, model_id: str) -> _Model:
        from shared.services.registry import get_model

        with self.uow() as tx:
            model = get_model(tx.models, model_id)
            details = dict(model.details or {})
            fs = (
                tx.feature_sets.get(model.feature_set_id)
                if model.feature_set_id is not None
                else None
            )
            config = dict(fs.feature_config or {}) if fs is not None else None
            storage_path = model.storage_path
        if not details.get("features") or "score_transform" not in details:
            raise Conflict(f"Model {model_id} has no ONNX export to score with.")
        if config is None:
            raise Conflict(
                f"Model {model_id} has no feature set: its feature configuration "
                "is unknown."
            )
        return _Model(
            storage_path,
            list(details["features"]),
            dict(details["score_transform"]),
            config,
        )

    # -- job ------------------------------------------------------------------------

    def run_job(self, job_id: str) -> dict[str, Any]:
        """The activity body: idempotent (a re-run writes the same file again)."""
        from ml.features import FeatureInputError
        from shared.services.jobs import JobCancelled

        try:
            payload = self.jobs.start(job_id, "loading the dataset")
        except JobCancelled:
            return {"status": "CANCELLED"}
        try:
            result = self._run(job_id, payload)
        except (FeatureInputError, Conflict) as exc:
            field = getattr(exc, "field", None)
            reason = f"{exc.message} (field: {field})" if field else exc.message
            self.jobs.fail(job_id, reason)
            return {"status": "FAILED", "error": reason}
        except JobCancelled:
            return {"status": "CANCELLED"}
        self.jobs.complete(job_id, result)
        log.info("backtest %s: %s", job_id, result)
        return {"status": "COMPLETED", **result}

    def _run(self, job_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        import pyarrow.parquet as pq

        from ml.features import ROLES, FeatureConfig, FeatureInputError
        from ml.features.window import window_features
        from shared.adapters.blobs.local_copy import local_file

        model = self._model(payload["model_id"])
        onnx = self.blobs.get_bytes(model.storage_path + "model.onnx")
        mapping = model.feature_config.get("column_mapping") or {}
        with local_file(self.blobs, payload["dataset_path"]) as path:
            present = set(pq.read_schema(path).names)
            wanted = [c for c in (mapping.get(r, r) for r in ROLES) if c in present]
            df = pq.read_table(path, columns=wanted).to_pandas()
        self.jobs.progress(job_id, 0.1, f"computing features on {len(df):,} rows")
        known = FeatureConfig().to_dict()
        window = window_features(
            df,
            FeatureConfig.from_dict(
                {k: v for k, v in model.feature_config.items() if k in known}
            ),
            model.features,
            _ns(payload["window_start"]),
            _ns(payload["window_end"]),
            column_mapping=mapping or None,
        )
        del df
        if window.n == 0:
            raise FeatureInputError(
                "no transactions of the dataset fall in the window", "window_start"
            )
        scores = self._score(job_id, onnx, model, window)
        self.jobs.progress(job_id, 0.9, "writing the scores")
        path_in_store = scores_path(job_id)
        with tempfile.TemporaryDirectory(prefix="sh-backtest-") as tmp:
            out = Path(tmp) / "scores.parquet"
            pq.write_table(_scores_table(window, scores), out, compression="zstd")
            self.blobs.upload_file(path_in_store, out)
        labelled, positives = _label_counts(window)
        return {
            "scores_path": path_in_store,
            "model_id": payload["model_id"],
            "dataset_id": payload["dataset_id"],
            "dataset_version": payload["dataset_version"],
            "window_start": payload["window_start"],
            "window_end": payload["window_end"],
            "rows_scored": window.n,
            "rows_history": window.history_rows,
            "labelled": labelled,
            "positives": positives,
        }

    def _score(
        self, job_id: str, onnx: bytes, model: _Model, window: WindowFeatures
    ) -> npt.NDArray[Any]:
        import numpy as np

        from ml.scoring import OnnxScorer

        # one thread: on a shared machine more threads spin against each other
        scorer = OnnxScorer(onnx, model.features, model.score_transform)
        parts = []
        for lo in range(0, window.n, _SCORE_CHUNK):
            self.jobs.progress(
                job_id, 0.6 + 0.3 * lo / window.n, f"scoring {window.n:,} transactions"
            )
            parts.append(scorer.score(window.matrix[lo : lo + _SCORE_CHUNK]))
        return np.concatenate(parts)


def _label_counts(window: WindowFeatures) -> tuple[int | None, int | None]:
    """(labelled rows, frauds) of the window; None without a label column."""
    import numpy as np

    if window.label is None:
        return None, None
    return int((~np.isnan(window.label)).sum()), int((window.label == 1).sum())


def _scores_table(window: WindowFeatures, scores: npt.NDArray[Any]) -> Any:
    import numpy as np
    import pyarrow as pa

    columns: dict[str, Any] = {
        "transaction_id": pa.array(window.transaction_id, pa.string()),
        "timestamp": pa.array(window.ts, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "user_id": pa.array(window.user_id, pa.string()),
        "score": pa.array(np.asarray(scores, dtype=np.float64)),
    }
    if window.label is not None:
        label = window.label
        columns["label"] = pa.array(
            np.nan_to_num(label, nan=0).astype(np.int8), mask=np.isnan(label)
        )
    return pa.table(columns)
