"""ONNX inference for /predict: imports only numpy and onnxruntime (cold start matters)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from ml.scoring.matrix import feature_matrix, select_columns
from ml.scoring.transform import (
    Float64Array,
    apply_score_transform,
    score_transform_one,
)


class OnnxScorer:
    """One ONNX session plus the model's feature order and score transform.

    Missing features in `score_one` become `missing_value` (default NaN): tree models
    (XGBoost, LightGBM, Isolation Forest) route NaN down their learned/default branch;
    the neural net would return NaN, so pass ``missing_value=0.0`` for it if rows can be
    incomplete (0 is the training mean after standard scaling only approximately).
    """

    def __init__(
        self,
        onnx_bytes: bytes,
        feature_names: list[str],
        score_transform: dict[str, Any],
        threads: int = 1,
        *,
        missing_value: float = math.nan,
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = (
            3  # ORT warns on ML-opset label shapes; not actionable
        )
        self._session = ort.InferenceSession(
            onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[
            int(score_transform.get("output", 1))
        ].name
        self.feature_names = list(feature_names)
        self.score_transform = dict(score_transform)
        self._column = int(self.score_transform.get("column", 0))
        self.missing_value = float(missing_value)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def score(self, X: npt.NDArray[Any]) -> Float64Array:
        """Fraud scores in [0, 1] for an (n, n_features) matrix (cast to float32)."""
        matrix = np.ascontiguousarray(X, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(
                f"expected shape (n, {self.n_features}), got {tuple(matrix.shape)}"
            )
        (raw,) = self._session.run([self._output], {self._input: matrix})
        return apply_score_transform(np.asarray(raw), self.score_transform)

    def score_single(self, X: npt.NDArray[np.float32]) -> float:
        """``score(X)[0]`` for a one-row float32 matrix (``matrix``'s output), with the
        transform in plain floats: the single-transaction path."""
        (raw,) = self._session.run([self._output], {self._input: X})
        value = raw[0, self._column] if raw.ndim == 2 else raw[0]
        return score_transform_one(float(value), self.score_transform)

    def matrix(
        self, rows: Sequence[Mapping[str, float | None]]
    ) -> npt.NDArray[np.float32]:
        """The model's input for rows given by feature name (see `feature_matrix`)."""
        return feature_matrix(self.feature_names, rows, self.missing_value)

    def matrix_of_columns(
        self, names: Sequence[str], values: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float32]:
        """The model's input for rows given by column (see `select_columns`)."""
        return select_columns(self.feature_names, names, values, self.missing_value)

    def score_one(self, features: Mapping[str, float | None]) -> float:
        """Score one transaction given by feature name; unknown names are ignored."""
        return self.score_single(self.matrix([features]))
