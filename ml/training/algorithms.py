"""The four algorithms, their hyperparameters, and validation of user-supplied values.

The catalog is the single source for GET /training/algorithms and for validation, so the
API can never advertise a parameter the trainer does not accept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ParamType = Literal["int", "float", "categorical", "bool"]


@dataclass(frozen=True)
class HyperParam:
    """One tunable. For numeric types, `choices` lists extra literal values allowed
    besides the range (e.g. Isolation Forest's ``contamination="auto"``)."""

    name: str
    type: ParamType
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    log_scale: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "description": self.description,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices) if self.choices is not None else None,
            "log_scale": self.log_scale,
        }


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    title: str
    description: str
    supervised: bool
    hyperparameters: tuple[HyperParam, ...]
    iterations_param: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "supervised": self.supervised,
            "iterations_param": self.iterations_param,
            "hyperparameters": [p.to_dict() for p in self.hyperparameters],
        }


class HyperparameterError(ValueError):
    """A bad hyperparameter; `field` names it so the API can point at it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _class_weight(default: str) -> HyperParam:
    return HyperParam(
        "class_weight",
        "categorical",
        default,
        "none: raw class frequencies; balanced: up-weight fraud by negatives/positives; "
        "auto: fit both, keep balanced only if it raises validation average precision",
        choices=("none", "balanced", "auto"),
    )


_CLASS_WEIGHT = _class_weight("none")
_EARLY_STOPPING = HyperParam(
    "early_stopping_rounds",
    "int",
    50,
    "Stop when validation average precision has not improved for this many rounds "
    "(0: train all n_estimators); the model keeps its best round",
    minimum=0,
    maximum=1000,
)


def _trees(default: int) -> HyperParam:
    return HyperParam(
        "n_estimators",
        "int",
        default,
        "Boosting rounds / trees (an upper bound under early stopping)",
        minimum=1,
        maximum=5000,
    )


def _lr(default: float) -> HyperParam:
    return HyperParam(
        "learning_rate",
        "float",
        default,
        "Shrinkage per round",
        1e-4,
        1.0,
        log_scale=True,
    )


def _reg(name: str, default: float, what: str) -> HyperParam:
    return HyperParam(name, "float", default, what, 0.0, 1000.0)


def _fraction(name: str, what: str) -> HyperParam:
    return HyperParam(name, "float", 1.0, what, 0.05, 1.0)


ALGORITHMS: dict[str, AlgorithmSpec] = {
    "xgboost": AlgorithmSpec(
        name="xgboost",
        title="XGBoost",
        description="Gradient-boosted trees (hist). Strong default for tabular fraud data.",
        supervised=True,
        iterations_param="n_estimators",
        hyperparameters=(
            _trees(1000),
            _EARLY_STOPPING,
            HyperParam("max_depth", "int", 6, "Maximum tree depth", 1, 16),
            _lr(0.1),
            _fraction("subsample", "Row fraction sampled per round"),
            _fraction("colsample_bytree", "Feature fraction sampled per tree"),
            _reg("min_child_weight", 1.0, "Minimum hessian sum in a leaf"),
            _reg("gamma", 0.0, "Minimum loss reduction to split"),
            _reg("reg_lambda", 1.0, "L2 regularisation on leaf weights"),
            _reg("reg_alpha", 0.0, "L1 regularisation on leaf weights"),
            HyperParam("max_bin", "int", 256, "Histogram bins per feature", 16, 1024),
            _CLASS_WEIGHT,
        ),
    ),
    "lightgbm": AlgorithmSpec(
        name="lightgbm",
        title="LightGBM",
        description="Leaf-wise gradient boosting; fast on wide, large data sets.",
        supervised=True,
        iterations_param="n_estimators",
        hyperparameters=(
            _trees(1000),
            _EARLY_STOPPING,
            HyperParam("num_leaves", "int", 31, "Maximum leaves per tree", 2, 4096),
            HyperParam("max_depth", "int", -1, "Maximum depth (-1: unlimited)", -1, 64),
            _lr(0.1),
            _fraction("subsample", "Row fraction bagged per round (bagging_fraction)"),
            _fraction(
                "colsample_bytree", "Feature fraction per tree (feature_fraction)"
            ),
            HyperParam(
                "min_child_samples", "int", 20, "Minimum rows in a leaf", 1, 100000
            ),
            _reg("reg_lambda", 0.0, "L2 regularisation"),
            _reg("reg_alpha", 0.0, "L1 regularisation"),
            _CLASS_WEIGHT,
        ),
    ),
    "isolation_forest": AlgorithmSpec(
        name="isolation_forest",
        title="Isolation Forest",
        description="Unsupervised anomaly detector; needs no labels, catches novel fraud.",
        supervised=False,
        iterations_param="n_estimators",
        hyperparameters=(
            HyperParam("n_estimators", "int", 100, "Number of trees", 1, 2000),
            HyperParam(
                "max_samples", "int", 256, "Rows sampled per tree", 2, 1_000_000
            ),
            HyperParam(
                "contamination",
                "float",
                "auto",
                "Expected anomaly share ('auto' or a fraction); moves only the label cut",
                minimum=1e-6,
                maximum=0.5,
                choices=("auto",),
            ),
            _fraction("max_features", "Feature fraction per tree"),
            HyperParam("bootstrap", "bool", False, "Sample rows with replacement"),
        ),
    ),
    "neural_net": AlgorithmSpec(
        name="neural_net",
        title="Neural network (MLP)",
        description="Standard-scaled multilayer perceptron trained by Adam mini-batches.",
        supervised=True,
        iterations_param="max_iter",
        hyperparameters=(
            HyperParam(
                "hidden_layer_sizes",
                "categorical",
                "64,32",
                "Hidden layer widths",
                choices=("16", "32", "64", "32,16", "64,32", "128,64", "128,64,32"),
            ),
            HyperParam(
                "activation",
                "categorical",
                "relu",
                "Hidden activation",
                choices=("relu", "tanh", "logistic"),
            ),
            HyperParam("max_iter", "int", 20, "Epochs", 1, 1000),
            HyperParam("batch_size", "int", 256, "Mini-batch size", 8, 65536),
            HyperParam(
                "learning_rate_init",
                "float",
                1e-3,
                "Adam step size",
                1e-6,
                1.0,
                log_scale=True,
            ),
            HyperParam("alpha", "float", 1e-4, "L2 penalty", 0.0, 10.0),
            _class_weight("auto"),
        ),
    ),
}


def algorithm_catalog() -> list[dict[str, Any]]:
    """JSON-ready list for GET /training/algorithms."""
    return [spec.to_dict() for spec in ALGORITHMS.values()]


def get_algorithm(algorithm: str) -> AlgorithmSpec:
    spec = ALGORITHMS.get(algorithm)
    if spec is None:
        raise HyperparameterError(
            "algorithm",
            f"unknown algorithm {algorithm!r}; choose from {sorted(ALGORITHMS)}",
        )
    return spec


def validate_hyperparameters(
    algorithm: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Check names, types and ranges; return a full dict with defaults filled in.

    Integral floats (e.g. 200.0 from JSON) are accepted for int parameters; bools never
    pass as numbers.
    """
    spec = get_algorithm(algorithm)
    known = {p.name: p for p in spec.hyperparameters}
    for name in params:
        if name not in known:
            raise HyperparameterError(
                name,
                f"unknown hyperparameter {name!r} for {algorithm}; known: {sorted(known)}",
            )
    out: dict[str, Any] = {}
    for p in spec.hyperparameters:
        out[p.name] = _check(p, params[p.name]) if p.name in params else p.default
    return out


def _check(p: HyperParam, value: Any) -> Any:
    if p.type in ("int", "float") and p.choices is not None and value in p.choices:
        if not isinstance(value, bool):
            return value
    if p.type == "bool":
        if not isinstance(value, bool):
            raise HyperparameterError(p.name, f"{p.name} must be a boolean")
        return value
    if p.type == "categorical":
        assert p.choices is not None
        if isinstance(value, bool) or value not in p.choices:
            raise HyperparameterError(
                p.name, f"{p.name} must be one of {list(p.choices)}, got {value!r}"
            )
        return value
    number = _number(p, value)
    if (p.minimum is not None and number < p.minimum) or (
        p.maximum is not None and number > p.maximum
    ):
        raise HyperparameterError(
            p.name,
            f"{p.name} must be between {p.minimum} and {p.maximum}, got {value!r}",
        )
    return number


def _number(p: HyperParam, value: Any) -> int | float:
    extra = f" or one of {list(p.choices)}" if p.choices else ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HyperparameterError(
            p.name, f"{p.name} must be {p.type}{extra}, got {value!r}"
        )
    if not math.isfinite(value):
        raise HyperparameterError(p.name, f"{p.name} must be finite")
    if p.type == "int":
        if isinstance(value, float) and not value.is_integer():
            raise HyperparameterError(
                p.name, f"{p.name} must be an integer, got {value!r}"
            )
        return int(value)
    return float(value)
