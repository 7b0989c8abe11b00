"""What a bias audit reads: per row the actual label and the model's decision, and
per protected column its values; from the model's stored test rows joined with its
feature set's carried columns, or from the labelled predictions of a window with the
protected values logged with them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import Conflict
from shared.services.monitoring_window import Window, resolve_window

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from shared.ports import BlobStore, Transactions
    from shared.services.drift_baselines import MonitoredModel
    from shared.services.fairness import AttributeSpec
    from shared.services.model_evaluation import EvaluationRows


@dataclass(frozen=True)
class AuditData:
    """What an audit reads: per row the actual label and the decision, and per
    protected column its values (None: the data has no such column)."""

    labels: npt.NDArray[np.float64]
    decisions: npt.NDArray[np.bool_]
    columns: dict[str, npt.NDArray[Any] | None]

    @property
    def rows(self) -> int:
        return int(self.labels.shape[0])


def read_test_set(
    blobs: BlobStore, model: MonitoredModel, specs: list[AttributeSpec]
) -> AuditData:
    """The stored test rows joined by transaction id with the feature set's
    protected columns (a column the feature set lacks: None)."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from shared.adapters.blobs.local_copy import local_file
    from shared.ports import BlobNotFound

    rows = evaluation_rows(blobs, model.id)
    labels = np.asarray(rows.label, dtype=np.float64)
    decisions = np.asarray(rows.score, dtype=np.float64) >= model.threshold
    wanted = sorted({s.column_name for s in specs})
    columns: dict[str, Any] = dict.fromkeys(wanted)
    if not wanted or not model.feature_set_path:
        return AuditData(labels, decisions, columns)
    try:
        with local_file(blobs, model.feature_set_path) as path:
            names = set(pq.ParquetFile(path).schema_arrow.names)
            present = [c for c in wanted if c in names]
            if "transaction_id" not in names or not present:
                return AuditData(labels, decisions, columns)
            table = pq.read_table(path, columns=["transaction_id", *present])
    except BlobNotFound:
        return AuditData(labels, decisions, columns)
    carried = table.to_pandas().drop_duplicates("transaction_id", keep="last")
    test = pd.DataFrame({"transaction_id": np.asarray(rows.transaction_id)})
    joined = test.merge(
        carried.astype({"transaction_id": str}), on="transaction_id", how="left"
    )
    for c in present:
        columns[c] = joined[c].to_numpy()
    return AuditData(labels, decisions, columns)


def evaluation_rows(blobs: BlobStore, model_id: uuid.UUID) -> EvaluationRows:
    """The model's stored test rows, read by path (the model row may not be
    registered yet); Conflict when there are none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shared.ports import BlobNotFound
    from shared.services.model_evaluation import EvaluationRows, evaluation_path

    try:
        data = blobs.get_bytes(evaluation_path(model_id))
    except BlobNotFound:
        raise no_evaluation(model_id) from None
    table = pq.read_table(pa.BufferReader(data))
    return EvaluationRows(
        transaction_id=table["transaction_id"].to_numpy(zero_copy_only=False),
        user_id=table["user_id"].to_numpy(zero_copy_only=False),
        timestamp=table["timestamp"].cast(pa.int64()).to_numpy(),
        label=table["label"].to_numpy(),
        score=table["score"].to_numpy(),
    )


def read_predictions(
    uow: Transactions,
    model: MonitoredModel,
    specs: list[AttributeSpec],
    window: Window | None,
) -> AuditData:
    """The window's labelled predictions and the protected values logged with
    them (a column no prediction carried: None)."""
    import numpy as np

    span = window or resolve_window("24h")
    with uow() as tx:
        found = tx.bias.labelled_predictions(model.id, span.start, span.end)
    labels = np.asarray(found.labels, dtype=np.float64)
    decisions = np.asarray(found.decisions, dtype=np.bool_)
    columns: dict[str, Any] = {}
    for column in {s.column_name for s in specs}:
        values = [None if p is None else p.get(column) for p in found.protected]
        carried = any(v is not None for v in values)
        columns[column] = np.asarray(values, dtype=object) if carried else None
    if not found.labels:  # nothing to audit: NO_DATA whatever was logged
        columns = {c: np.empty(0, dtype=object) for c in columns}
    return AuditData(labels, decisions, columns)


def no_evaluation(model_id: uuid.UUID) -> Conflict:
    return Conflict(
        f"Model {model_id} has no stored test evaluation to audit: train it again "
        "(its feature set needs transaction ids) or audit its predictions.",
        code="NO_EVALUATION",
    )
