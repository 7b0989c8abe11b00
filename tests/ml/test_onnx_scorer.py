"""OnnxScorer: the hot path stays light and validates its input."""

from __future__ import annotations

import numpy as np
import pytest

from ml.scoring import OnnxScorer, apply_score_transform
from tests.support.fresh_process import loaded_after


def test_import_does_not_load_heavy_libraries() -> None:
    heavy = ("pandas", "sklearn", "xgboost", "lightgbm", "shap", "scipy", "onnx")
    heavy += ("skl2onnx", "onnxmltools")
    imports = "import ml.scoring\nfrom ml.scoring.onnx_scorer import OnnxScorer"
    assert loaded_after(imports, heavy) == []


def test_transforms() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    out = apply_score_transform(probs, {"kind": "probability", "column": 1})
    assert out.dtype == np.float64 and np.allclose(out, [0.1, 0.8])
    margin = np.array([[-1.0], [0.0], [1.0], [-1e6]])
    t = {"kind": "logistic", "column": 0, "sign": -1.0, "center": 0.0, "scale": 0.5}
    z = apply_score_transform(margin, t)
    assert np.allclose(z[:3], 1 / (1 + np.exp(margin[:3, 0] / 0.5)))
    assert z[3] == 1.0 and np.all(np.diff(z[:3]) < 0)
    with pytest.raises(ValueError):
        apply_score_transform(margin, {"kind": "magic"})


def test_scorer_rejects_wrong_width() -> None:
    from sklearn.datasets import make_classification

    from ml.training import train_model
    from ml.training.onnx_export import to_onnx

    X, y = make_classification(500, 4, random_state=0)
    model = train_model("lightgbm", {"n_estimators": 5}, X, y, None, None, list("abcd"))
    scorer = OnnxScorer(to_onnx(model), list("abcd"), model.score_transform, threads=1)
    with pytest.raises(ValueError):
        scorer.score(X[:, :3])
    assert 0.0 <= scorer.score_one({"a": 1.0, "zzz": 3.0}) <= 1.0
