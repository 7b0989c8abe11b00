"""SHAP values for a stored model: rebuild it from its native bytes, explain rows.

`load_explainer` takes the ``model.native`` blob that `TrainedModel.save_native` wrote
and returns a `ModelExplainer`, whose `explain` splits each row's raw model output into
a base value plus one additive contribution per feature. For every algorithm a positive
contribution pushes the row towards fraud (or anomaly); `Explanation.output` names the
unit, and `ModelExplainer.fraud_score(raw)` maps the raw output to the model's fraud
score in [0, 1] (the same number `TrainedModel.predict_scores` and `/predict` give).

Per algorithm:

- ``xgboost``: exact TreeSHAP from the booster itself (``pred_contribs=True``; the last
  column is the bias). Unit ``"log_odds"``: raw is the margin and the fraud score is
  sigmoid(raw). The blob is UBJSON (xgboost >= 2.1 writes it for any suffix but
  ``.json``); `xgboost.Booster.load_model` reads UBJSON or JSON from a bytearray.
- ``lightgbm``: exact TreeSHAP from the booster (``pred_contrib=True``). Unit
  ``"log_odds"`` (``raw_score=True``); fraud score sigmoid(raw). The blob is the text
  model.
- ``isolation_forest``: shap's TreeExplainer (tree-path-dependent TreeSHAP), exact. shap
  explains the mean isolation depth E[h(x)] over the trees (leaf depth plus the c(n)
  correction, as sklearn counts it); sklearn's ``score_samples = -2 ** (-E[h] / c)`` with
  c = c(max_samples). Short paths mean anomalous, so raw here is *minus* that depth, unit
  ``"neg_path_length"``: a positive contribution means "isolated sooner", i.e. more
  anomalous. The fraud score applies the model's logistic transform to
  ``decision_function = score_samples - offset_``.
- ``neural_net``: baseline Kernel SHAP (shap's KernelExplainer) with a one-row
  background at the StandardScaler's mean, so an "absent" feature takes its training
  average (0 after scaling). It explains the positive-class log-odds (the MLP's output
  pre-activation; unit ``"log_odds"``, fraud score sigmoid(raw)). Kernel SHAP with its
  additivity constraint makes base + contributions equal raw exactly, but the split is
  a sampled estimate (`KERNEL_SAMPLES` coalitions, seeded, so repeatable; exact when
  few enough features differ from the mean to enumerate): about 17-25 ms per row. The
  regulariser is off (shap's default keeps only 10 features).
  shap's PermutationExplainer was rejected: it JIT-compiles numba code on first use
  (~4 s per process) and reseeds numpy's global RNG on every call.

Missing values are NaN. The boosters and the forest route them as the model does
(shap's forest explainer routes NaN exactly as sklearn's ``score_samples``). The MLP has
no notion of missing, so NaN inputs are set to the training mean: they then contribute
exactly 0 and raw is the model's output for the imputed row.

This module imports only numpy (and `ml.scoring.transform`); xgboost, lightgbm, shap
and scikit-learn are imported inside the functions that need them. Blobs of the sklearn
models are pickles: load only the platform's own model files.
"""

from __future__ import annotations

import math
import pickle
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.scoring.matrix import feature_matrix
from ml.scoring.transform import Float64Array, apply_score_transform

__all__ = [
    "ALGORITHMS",
    "KERNEL_SAMPLES",
    "Explanation",
    "ModelExplainer",
    "load_explainer",
]

ALGORITHMS = ("xgboost", "lightgbm", "isolation_forest", "neural_net")
# coalitions per row for the MLP: ~20 ms; error ~2% of the largest |contribution|
KERNEL_SAMPLES = 2048
KERNEL_SEED = 0


@dataclass(frozen=True)
class Explanation:
    """Additive split of the raw model output: ``base_value + contributions.sum(1) == raw``.

    `contributions` is (n, n_features) float64 in the feature order of the explainer;
    `raw` is (n,) float64; `output` names the unit ("log_odds", "neg_path_length").
    """

    base_value: float
    contributions: Float64Array
    raw: Float64Array
    output: str


def _sigmoid(values: npt.NDArray[Any]) -> Float64Array:
    x = np.asarray(values, dtype=np.float64)
    out: Float64Array = 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic
    return out


class ModelExplainer(ABC):
    """Explains one model; safe to share between threads."""

    algorithm: str
    output: str

    def __init__(self, feature_names: list[str], score_transform: dict[str, Any]):
        self.feature_names = list(feature_names)
        self.score_transform = dict(score_transform)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def explain(self, X: npt.NDArray[Any]) -> Explanation:
        """SHAP values for an (n, n_features) matrix (a 1-D row is taken as n = 1).

        Rows are cast to float32 first, the precision the model was trained and is
        served at, so tree splits route exactly as in `/predict`.
        """
        matrix = np.asarray(X)
        if matrix.ndim == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(
                f"expected shape (n, {self.n_features}), got {tuple(np.shape(X))}"
            )
        if not np.issubdtype(matrix.dtype, np.number):
            raise ValueError("features must be numeric")
        rows = np.ascontiguousarray(matrix, dtype=np.float32)
        if rows.shape[0] == 0:
            empty = np.zeros((0, self.n_features), dtype=np.float64)
            return Explanation(
                self._base_value(), empty, np.zeros(0, np.float64), self.output
            )
        return self._explain(rows)

    def explain_features(self, features: Mapping[str, float | None]) -> Explanation:
        """Explain one transaction given by feature name (missing names -> NaN)."""
        return self.explain(feature_matrix(self.feature_names, [features]))

    def fraud_score(self, raw: npt.NDArray[Any]) -> Float64Array:
        """The model's fraud score in [0, 1] for raw outputs of `explain`."""
        return apply_score_transform(_sigmoid(raw), self.score_transform)

    @abstractmethod
    def _explain(self, X: npt.NDArray[np.float32]) -> Explanation: ...

    @abstractmethod
    def _base_value(self) -> float: ...


class _BoosterExplainer(ModelExplainer):
    """Gradient-boosted trees: the library's own exact TreeSHAP, whose last column is
    the bias (the same on every row); the raw output is the log-odds margin."""

    output = "log_odds"

    def __init__(
        self,
        booster: Any,
        n_model_features: int,
        feature_names: list[str],
        score_transform: dict[str, Any],
    ):
        super().__init__(feature_names, score_transform)
        if n_model_features != self.n_features:
            raise ValueError(
                f"model has {n_model_features} features, {self.n_features} names given"
            )
        self._booster = booster
        self._base: float | None = None

    @abstractmethod
    def _contribs_and_raw(
        self, X: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]: ...

    def _explain(self, X: npt.NDArray[np.float32]) -> Explanation:
        contribs, raw = self._contribs_and_raw(X)
        contribs = np.asarray(contribs, dtype=np.float64)
        return Explanation(
            float(contribs[0, -1]),
            np.ascontiguousarray(contribs[:, :-1]),
            np.asarray(raw, dtype=np.float64),
            self.output,
        )

    def _base_value(self) -> float:
        if self._base is None:
            self._base = self._explain(
                np.zeros((1, self.n_features), np.float32)
            ).base_value
        return self._base


class _XGBoostExplainer(_BoosterExplainer):
    algorithm = "xgboost"

    def __init__(
        self, native: bytes, feature_names: list[str], score_transform: dict[str, Any]
    ):
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray(native))
        booster.set_param({"nthread": 1})  # one row per request: threads only cost
        super().__init__(
            booster, booster.num_features(), feature_names, score_transform
        )

    def _contribs_and_raw(
        self, X: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        import xgboost as xgb

        dm = xgb.DMatrix(X, missing=np.nan, nthread=1)
        return (
            self._booster.predict(dm, pred_contribs=True),
            self._booster.predict(dm, output_margin=True),
        )


class _LightGBMExplainer(_BoosterExplainer):
    algorithm = "lightgbm"

    def __init__(
        self, native: bytes, feature_names: list[str], score_transform: dict[str, Any]
    ):
        import lightgbm as lgb

        booster = lgb.Booster(model_str=native.decode("utf-8"))
        super().__init__(booster, booster.num_feature(), feature_names, score_transform)

    def _contribs_and_raw(
        self, X: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        return (
            self._booster.predict(X, pred_contrib=True, num_threads=1),
            self._booster.predict(X, raw_score=True, num_threads=1),
        )


def average_path_length(n: int) -> float:
    """c(n): the mean depth of an unsuccessful BST search, sklearn's normaliser."""
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (math.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n


def _load_pickle(native: bytes, expected: str) -> Any:
    model = pickle.loads(native)  # the platform's own model blob, never user input
    if type(model).__name__ != expected:
        raise ValueError(f"model blob holds a {type(model).__name__}, not {expected}")
    return model


class _IsolationForestExplainer(ModelExplainer):
    algorithm = "isolation_forest"
    output = "neg_path_length"

    def __init__(
        self, native: bytes, feature_names: list[str], score_transform: dict[str, Any]
    ):
        import shap

        super().__init__(feature_names, score_transform)
        forest = _load_pickle(native, "IsolationForest")
        if int(forest.n_features_in_) != self.n_features:
            raise ValueError(
                f"model has {forest.n_features_in_} features, "
                f"{self.n_features} names given"
            )
        self._forest = forest
        self._explainer = shap.TreeExplainer(forest)
        # depth of a row that isolates at the root of every tree; score_samples divides
        # the mean depth by this
        self._depth_scale = average_path_length(int(forest.max_samples_))
        self._offset = float(forest.offset_)

    def _explain(self, X: npt.NDArray[np.float32]) -> Explanation:
        phi = np.asarray(
            self._explainer.shap_values(X, check_additivity=False), dtype=np.float64
        )
        base = self._base_value()
        contributions = -phi
        raw = base + contributions.sum(axis=1)
        return Explanation(base, contributions, raw, self.output)

    def _base_value(self) -> float:
        return -float(np.ravel(self._explainer.expected_value)[0])

    def fraud_score(self, raw: npt.NDArray[Any]) -> Float64Array:
        depth = -np.asarray(raw, dtype=np.float64)
        score_samples = -np.exp2(-depth / self._depth_scale)
        return apply_score_transform(score_samples - self._offset, self.score_transform)


def _relu(a: Float64Array) -> Float64Array:
    return np.maximum(a, 0.0)


def _tanh(a: Float64Array) -> Float64Array:
    return np.tanh(a)


def _identity(a: Float64Array) -> Float64Array:
    return a


_ACTIVATIONS: dict[str, Callable[[Float64Array], Float64Array]] = {
    "identity": _identity,
    "relu": _relu,
    "tanh": _tanh,
    "logistic": _sigmoid,
}
_KERNEL_RNG_LOCK = threading.Lock()


class _NeuralNetExplainer(ModelExplainer):
    algorithm = "neural_net"
    output = "log_odds"

    def __init__(
        self, native: bytes, feature_names: list[str], score_transform: dict[str, Any]
    ):
        super().__init__(feature_names, score_transform)
        pipeline = _load_pickle(native, "Pipeline")
        scaler, mlp = pipeline[0], pipeline[-1]
        if mlp.out_activation_ != "logistic" or mlp.n_outputs_ != 1:
            raise ValueError("expected a binary MLPClassifier (one logistic output)")
        if mlp.activation not in _ACTIVATIONS:
            raise ValueError(f"unsupported MLP activation {mlp.activation!r}")
        if int(scaler.n_features_in_) != self.n_features:
            raise ValueError(
                f"model has {scaler.n_features_in_} features, "
                f"{self.n_features} names given"
            )
        self._mean = np.asarray(scaler.mean_, dtype=np.float64)
        scale = np.asarray(scaler.scale_, dtype=np.float64)
        self._scale = np.where(scale > 0.0, scale, 1.0)
        self._weights = [np.asarray(w, dtype=np.float64) for w in mlp.coefs_]
        self._biases = [np.asarray(b, dtype=np.float64) for b in mlp.intercepts_]
        self._hidden = _ACTIVATIONS[mlp.activation]
        self._background = self._mean.reshape(1, -1)
        self._base = float(self.log_odds(self._background)[0])

    def log_odds(self, X: npt.NDArray[Any]) -> Float64Array:
        """Positive-class log-odds: the MLP's output layer before its sigmoid."""
        a = (np.asarray(X, dtype=np.float64) - self._mean) / self._scale
        last = len(self._weights) - 1
        for i, (w, b) in enumerate(zip(self._weights, self._biases, strict=True)):
            a = a @ w + b
            if i < last:
                a = self._hidden(a)
        out: Float64Array = a[:, 0]
        return out

    def _explain(self, X: npt.NDArray[np.float32]) -> Explanation:
        import shap

        rows = np.asarray(X, dtype=np.float64)
        rows = np.where(np.isnan(rows), self._mean, rows)
        # KernelExplainer keeps per-call state on itself: build one per call (~0.1 ms)
        explainer = shap.KernelExplainer(self.log_odds, self._background)
        # shap samples coalitions from numpy's global RNG: seed it for repeatable
        # explanations, then give other users their stream back
        with _KERNEL_RNG_LOCK:
            state = np.random.get_state()
            np.random.seed(KERNEL_SEED)
            try:
                phi = explainer.shap_values(
                    rows, nsamples=KERNEL_SAMPLES, l1_reg=False, silent=True
                )
            finally:
                np.random.set_state(state)
        contributions = np.asarray(phi, dtype=np.float64).reshape(rows.shape)
        return Explanation(self._base, contributions, self.log_odds(rows), self.output)

    def _base_value(self) -> float:
        return self._base


_Factory = Callable[[bytes, list[str], dict[str, Any]], ModelExplainer]
_EXPLAINERS: dict[str, _Factory] = {
    "xgboost": _XGBoostExplainer,
    "lightgbm": _LightGBMExplainer,
    "isolation_forest": _IsolationForestExplainer,
    "neural_net": _NeuralNetExplainer,
}


def load_explainer(
    algorithm: str,
    native: bytes,
    feature_names: list[str],
    score_transform: dict[str, Any],
) -> ModelExplainer:
    """Rebuild the model from its ``model.native`` bytes and wrap it for SHAP.

    Raises ValueError for an unknown algorithm or a blob that does not match it.
    Building costs a model load (plus ~0.3 s per 100 trees for the forest, which shap
    converts tree by tree); keep the explainer and reuse it.
    """
    factory = _EXPLAINERS.get(algorithm)
    if factory is None:
        raise ValueError(
            f"unknown algorithm {algorithm!r}; choose from {list(ALGORITHMS)}"
        )
    return factory(bytes(native), list(feature_names), dict(score_transform))
