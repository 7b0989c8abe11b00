"""ONNX inference for /predict: imports only numpy and onnxruntime (cold start matters)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from ml.scoring.transform import Float64Array, apply_score_transform


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
        self.missing_value = float(missing_value)
        self._index = {name: i for i, name in enumerate(self.feature_names)}

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

    def matrix(
        self, rows: Sequence[Mapping[str, float | None]]
    ) -> npt.NDArray[np.float32]:
        """The (n, n_features) input for rows given by feature name, in the model's
        feature order; absent names and None become `missing_value`."""
        out = np.full((len(rows), self.n_features), self.missing_value, np.float32)
        names = self.feature_names
        for i, row in enumerate(rows):
            out[i] = [_value(row.get(name), self.missing_value) for name in names]
        return out

    def score_one(self, features: Mapping[str, float | None]) -> float:
        """Score one transaction given by feature name; unknown names are ignored."""
        row = np.full((1, self.n_features), self.missing_value, dtype=np.float32)
        for name, value in features.items():
            i = self._index.get(name)
            if i is not None and value is not None:
                row[0, i] = value
        return float(self.score(row)[0])


def _value(value: float | None, missing: float) -> float:
    return missing if value is None else value
