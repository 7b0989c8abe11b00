"""OnnxScorer: the hot path stays light and validates its input."""

from __future__ import annotations

import numpy as np
import pytest

from ml.scoring import OnnxScorer, apply_score_transform
from ml.scoring.transform import score_transform_one
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
    # the single-row path gives what the matrix path gives, row by row
    singles = [
        scorer.score_single(scorer.matrix([dict(zip("abcd", r, strict=True))]))
        for r in X
    ]
    assert singles == scorer.score(X).tolist()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_the_one_value_transform_equals_the_array_form() -> None:
    rng = np.random.default_rng(0)
    raw = np.concatenate(
        [rng.normal(0, 3, 2000), [0.0, 1.0, -0.0, 1e308, -1e308, np.inf, -np.inf]]
    )
    transforms = [
        {"kind": "probability", "column": 0},
        {"kind": "logistic", "column": 0, "sign": -1.0, "center": 0.3, "scale": 0.5},
        {"kind": "logistic", "column": 0, "sign": 1.0, "center": -2.0, "scale": 7.0},
    ]
    for t in transforms:
        arrays = apply_score_transform(raw, t)
        ones = np.array([score_transform_one(float(v), t) for v in raw])
        if t["kind"] == "probability":
            assert ones.tolist() == arrays.tolist()
        else:  # numpy's vectorised tanh and math.tanh may differ in the last bit
            assert np.abs(ones - arrays).max() <= 4e-16, t
    with pytest.raises(ValueError):
        score_transform_one(0.5, {"kind": "magic"})


def test_rows_by_column_give_the_matrix_rows_by_name_give() -> None:
    """The batch path's matrix (columns in the feature set's order, some the model does
    not use, one it uses absent) equals the one built from a dict per row."""
    from ml.scoring.matrix import feature_matrix, select_columns

    rng = np.random.default_rng(3)
    names = ["d", "x", "b", "a", "y"]
    values = rng.normal(size=(50, len(names)))
    values[7, 2] = np.nan
    model_names = ["a", "b", "c", "d"]  # "c": not in the feature set
    dicts = [dict(zip(names, row, strict=True)) for row in values.tolist()]
    for missing in (np.nan, -999.0):
        by_column = select_columns(model_names, names, values, missing)
        by_name = feature_matrix(model_names, dicts, missing)
        assert by_column.dtype == by_name.dtype == np.float32
        np.testing.assert_array_equal(by_column, by_name)
    assert np.all(by_column[:, 2] == -999.0) and np.isnan(by_column[7, 1])
