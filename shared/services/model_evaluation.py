"""A model's test rows stored beside it, and the evaluation read from them.

Training stores the scored test rows (transaction id, user, time, label, score) as
``models/{id}/evaluation.parquet`` before the model is registered, so the same prefix
holds them and a failed registration removes them with the model's other files.
``GET /models/{id}/evaluation`` recomputes curves and precision@k from them, for any k.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import Conflict

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from shared.ports import BlobStore, Transactions

EVALUATION_FILE = "evaluation.parquet"


def evaluation_path(model_id: uuid.UUID | str) -> str:
    return f"models/{model_id}/{EVALUATION_FILE}"


@dataclass(frozen=True)
class EvaluationRows:
    """The test period's rows as training scored them; ``timestamp`` as epoch ns (UTC)
    integers or numpy datetime64 of any unit (a feature file's are milliseconds)."""

    transaction_id: Sequence[str] | npt.NDArray[Any]
    user_id: Sequence[str] | npt.NDArray[Any]
    timestamp: npt.NDArray[np.int64] | npt.NDArray[np.datetime64]
    label: npt.NDArray[Any]
    score: npt.NDArray[Any]

    def __post_init__(self) -> None:
        sizes = {
            len(self.transaction_id),
            len(self.user_id),
            len(self.timestamp),
            len(self.label),
            len(self.score),
        }
        if len(sizes) != 1:
            raise ValueError(f"evaluation columns differ in length: {sorted(sizes)}")

    @property
    def epoch_ns(self) -> npt.NDArray[np.int64]:
        import numpy as np

        values = np.asarray(self.timestamp)
        if values.dtype.kind == "M":
            values = values.astype("datetime64[ns]")
        elif values.dtype.kind not in "iu":
            raise ValueError(
                f"timestamps must be epoch ns or datetime64, not {values.dtype}"
            )
        return values.astype(np.int64)


@dataclass(frozen=True)
class EvaluationQuery:
    model_id: str
    k: int = 100


class ModelEvaluations:
    def __init__(self, uow: Transactions, blobs: BlobStore) -> None:
        self.uow = uow
        self.blobs = blobs

    def store(
        self, model_id: uuid.UUID | str, rows: EvaluationRows, k: int = 100
    ) -> dict[str, float | None]:
        """Write the rows beside the model; the metrics additions
        (``precision_at_{k}``, ``user_precision_at_{k}``) to merge into its metrics."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ml.training.evaluation import precision_metrics

        epoch_ns = rows.epoch_ns
        table = pa.table(
            {
                "transaction_id": pa.array(
                    [str(t) for t in rows.transaction_id], pa.string()
                ),
                "user_id": pa.array([str(u) for u in rows.user_id], pa.string()),
                "timestamp": pa.array(epoch_ns, pa.int64()).cast(
                    pa.timestamp("ns", tz="UTC")
                ),
                "label": pa.array(np.asarray(rows.label, dtype=np.int8), pa.int8()),
                "score": pa.array(np.asarray(rows.score, dtype=np.float64)),
            }
        )
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        self.blobs.put_bytes(evaluation_path(model_id), buf.getvalue())
        return precision_metrics(
            rows.label, rows.score, epoch_ns, np.asarray(rows.user_id), k
        )

    def rows(self, model_id: uuid.UUID | str) -> EvaluationRows:
        """The stored rows; Conflict when the model was trained before they were kept."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from shared.ports import BlobNotFound
        from shared.services.registry import get_model

        with self.uow() as tx:
            model = get_model(tx.models, model_id)
            path = model.storage_path + EVALUATION_FILE
        try:
            data = self.blobs.get_bytes(path)
        except BlobNotFound:
            raise Conflict(
                f"Model {model_id} has no stored test evaluation: it was trained "
                "before evaluations were stored; train it again to get one.",
                code="NO_EVALUATION",
            ) from None
        table = pq.read_table(pa.BufferReader(data))
        return EvaluationRows(
            transaction_id=table["transaction_id"].to_numpy(zero_copy_only=False),
            user_id=table["user_id"].to_numpy(zero_copy_only=False),
            timestamp=table["timestamp"].cast(pa.int64()).to_numpy(),
            label=table["label"].to_numpy(),
            score=table["score"].to_numpy(),
        )

    def evaluation(self, query: EvaluationQuery) -> dict[str, Any]:
        """The model's evaluation at its threshold, precision@k for ``query.k``."""
        import numpy as np

        from ml.training.evaluation import evaluation_report
        from shared.services.registry import get_model

        with self.uow() as tx:
            model = get_model(tx.models, query.model_id)
            metrics, details = dict(model.metrics or {}), dict(model.details or {})
            model_id = str(model.id)
        rows = self.rows(model_id)
        threshold = metrics.get("threshold", details.get("threshold", 0.5))
        report = evaluation_report(
            rows.label,
            rows.score,
            rows.timestamp,
            np.asarray(rows.user_id),
            float(threshold),
            query.k,
        )
        return {
            "model_id": model_id,
            "threshold_source": metrics.get("threshold_source"),
            **report,
        }
