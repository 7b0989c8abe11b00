"""Model training: algorithm catalog, splits, metrics, fitters, ONNX export.

Pure computation: no HTTP, database or Azure imports.
"""

from ml.training.algorithms import (
    ALGORITHMS,
    AlgorithmSpec,
    HyperParam,
    HyperparameterError,
    algorithm_catalog,
    validate_hyperparameters,
)
from ml.training.metrics import choose_threshold, evaluate
from ml.training.splits import SplitError, stratified_split, time_split
from ml.training.trainer import (
    TrainedModel,
    TrainingCancelled,
    TrainingDataError,
    TrainingProgress,
    check_training_data,
    train_model,
)

__all__ = [
    "ALGORITHMS",
    "AlgorithmSpec",
    "HyperParam",
    "HyperparameterError",
    "SplitError",
    "TrainedModel",
    "TrainingCancelled",
    "TrainingDataError",
    "TrainingProgress",
    "algorithm_catalog",
    "check_training_data",
    "choose_threshold",
    "evaluate",
    "stratified_split",
    "time_split",
    "train_model",
    "validate_hyperparameters",
]
