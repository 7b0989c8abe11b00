"""Batch features of a time window, computed with the history before it: what a backtest
scores. The same vectorised definitions as training (``compute_feature_arrays``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ml.features.batch import compute_feature_arrays
from ml.features.config import (
    Categorical,
    FeatureConfig,
    FeatureInputError,
    Float64Array,
    Int64Array,
    PreparedTransactions,
    apply_column_mapping,
    prepare_transactions,
)
from ml.features.registry import select_features

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class WindowFeatures:
    """The window's rows in input order: the model's matrix and what identifies them."""

    transaction_id: npt.NDArray[np.object_]
    user_id: npt.NDArray[np.object_]
    ts: Int64Array  # epoch ns, UTC
    label: Float64Array | None  # 0 / 1 / NaN (unlabelled); None without a label column
    matrix: npt.NDArray[np.float32]  # (rows, len(feature_names)), column-major
    history_rows: int  # rows before the window that fed its features

    @property
    def n(self) -> int:
        return int(self.ts.shape[0])


def take_rows(
    data: PreparedTransactions, keep: npt.NDArray[np.bool_]
) -> PreparedTransactions:
    """The rows where ``keep`` holds, categorical codes unchanged."""
    return PreparedTransactions(
        transaction_id=data.transaction_id[keep],
        ts=data.ts[keep],
        amount=data.amount[keep],
        label=None if data.label is None else data.label[keep],
        categorical={
            role: Categorical(col.codes[keep], col.uniques)
            for role, col in data.categorical.items()
        },
        roles=data.roles,
    )


def window_features(
    df: pd.DataFrame,
    config: FeatureConfig,
    feature_names: Sequence[str],
    start_ns: int | None = None,
    end_ns: int | None = None,
    *,
    column_mapping: Mapping[str, str] | None = None,
) -> WindowFeatures:
    """Features of the rows with ``start_ns <= ts < end_ns`` (open ends: unbounded),
    computed over every row before ``end_ns`` so that windowed aggregates see the
    history. Raises FeatureInputError when the data cannot give a feature."""
    data = prepare_transactions(apply_column_mapping(df, column_mapping))
    if end_ns is not None:
        data = take_rows(data, data.ts < end_ns)
    specs, _ = select_features(config, data.roles)
    wanted = set(feature_names)
    specs = [spec for spec in specs if spec.name in wanted]
    missing = sorted(wanted - {spec.name for spec in specs})
    if missing:
        raise FeatureInputError(
            f"the dataset cannot give the model's features {missing}", "dataset_id"
        )
    values = compute_feature_arrays(data, config, specs)
    in_window = np.ones(data.n, dtype=bool) if start_ns is None else data.ts >= start_ns
    every = bool(in_window.all())
    # column-major: filled column by column, read by row slices (``np.ascontiguousarray``
    # of a slice transposes it in blocks, far faster than strided column writes)
    shape = (int(in_window.sum()), len(feature_names))
    matrix = np.empty(shape, dtype=np.float32, order="F")
    for j, name in enumerate(feature_names):
        column = values.pop(name)
        matrix[:, j] = column if every else column[in_window]
    users = data.categorical["user_id"]
    names = np.asarray(users.uniques, dtype=object)
    return WindowFeatures(
        transaction_id=data.transaction_id[in_window],
        user_id=names[users.codes[in_window]],
        ts=data.ts[in_window],
        label=None if data.label is None else data.label[in_window],
        matrix=matrix,
        history_rows=int(data.n - matrix.shape[0]),
    )
