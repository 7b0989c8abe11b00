"""Export a TrainedModel to ONNX and measure its agreement with the native model.

Converters: onnxmltools for the boosters (``convert_xgboost`` / ``convert_lightgbm``),
skl2onnx for IsolationForest and the StandardScaler+MLP pipeline. Classifiers are
exported without ZipMap, so output 1 is a plain (n, 2) probability tensor; the Isolation
Forest's output 1 is its decision_function, mapped to a fraud score by the stored
``score_transform``. Input is one float32 tensor named ``input`` of shape (None, n).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ml.scoring.onnx_scorer import OnnxScorer
from ml.scoring.transform import apply_score_transform
from ml.training.model import TrainedModel

TARGET_OPSET = 17  # onnxruntime 1.32 runs up to opset 23
BOOSTER_OPSET = 15  # the highest onnxmltools 1.16 converts to
ML_OPSET = 3


def to_onnx(model: TrainedModel) -> bytes:
    """Serialized ONNX model for `model` (see module docstring for its outputs)."""
    n = len(model.feature_names)
    if model.algorithm in ("xgboost", "lightgbm"):
        from onnxmltools import convert_lightgbm, convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType

        types = [("input", FloatTensorType([None, n]))]
        if model.algorithm == "xgboost":
            # Boosters are trained nameless, so their features already are f0..fN.
            proto = convert_xgboost(
                model.model, initial_types=types, target_opset=BOOSTER_OPSET
            )
        else:
            proto = convert_lightgbm(
                model.model,
                initial_types=types,
                target_opset=BOOSTER_OPSET,
                zipmap=False,
            )
    else:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType as SkFloat

        options: dict[Any, Any] = {}
        if model.algorithm == "neural_net":
            options = {id(model.model[-1]): {"zipmap": False}}
        proto = convert_sklearn(
            model.model,
            initial_types=[("input", SkFloat([None, n]))],
            target_opset={"": TARGET_OPSET, "ai.onnx.ml": ML_OPSET},
            options=options,
        )
    data: bytes = proto.SerializeToString()
    return data


def onnx_max_abs_diff(
    model: TrainedModel,
    onnx_bytes: bytes,
    X: npt.NDArray[Any],
    score_transform: dict[str, Any] | None = None,
) -> float:
    """Largest |native score - ONNX score| over the rows of X.

    Both sides see the same float32-cast input: ONNX runs in float32, so comparing against
    float64 input would measure the cast (values near a tree split flip branches), not
    the conversion. The result is only meaningful for float32-representable features.
    `score_transform` replaces the model's (e.g. without its calibration).
    """
    transform = model.score_transform if score_transform is None else score_transform
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    native = apply_score_transform(model.raw_output(X32), transform)
    scorer = OnnxScorer(onnx_bytes, model.feature_names, transform)
    return float(np.max(np.abs(native - scorer.score(X32)))) if X32.shape[0] else 0.0
