"""The training job's fairness mitigation hook: a mitigated model beside the plain one.

The plain model stays the job's registered model. The trade-off of both (AUC,
precision, recall, the four disparity metrics on the test split) is stored in the job's
and the model's metrics under ``fairness_mitigation``. A threshold_optimizer mitigation
also stores its group thresholds in the model's score transform
(``group_thresholds``): serving applies them after the ONNX score when the request
carries the attribute's column (`ServingModel.decision_threshold`). An
exponentiated_gradient model has no ONNX export: reported, not served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.adapters.blobs.local_copy import local_file

if TYPE_CHECKING:
    import numpy.typing as npt

    from ml.training.pipeline import FitOutcome
    from ml.training.splits import Splits
    from shared.db.models import FeatureSet
    from shared.ports import BlobStore


def attribute_column(blobs: BlobStore, fs: FeatureSet, column: str) -> Any:
    """The protected column carried beside the features, as an object array."""
    import numpy as np
    import pyarrow.parquet as pq

    from ml.training.trainer import TrainingDataError

    with local_file(blobs, fs.storage_path or "") as path:
        if column not in pq.ParquetFile(path).schema_arrow.names:
            raise TrainingDataError(
                f"the feature set does not carry the protected column {column!r}",
                "fairness_mitigation.attribute",
            )
        table = pq.read_table(path, columns=[column])
    return np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=object)


def mitigate_outcome(
    config: dict[str, Any],
    groups: Any,
    X: npt.NDArray[Any],
    y: npt.NDArray[Any],
    splits: Splits,
    outcome: FitOutcome,
) -> None:
    """Trains the mitigated model and records the trade-off on `outcome` in place."""
    from ml.fairness.mitigation import (
        THRESHOLD_OPTIMIZER,
        MitigationPlan,
        mitigate,
    )

    spec = config["fairness_mitigation"]
    plan = MitigationPlan(
        spec["method"], spec["constraint"], spec["attribute"], int(config["seed"])
    )
    val, test, fit = splits.validation, splits.test, splits.fit
    val_scores = (
        outcome.val_scores
        if outcome.val_scores is not None
        else outcome.model.predict_scores(X[val])
    )
    result = mitigate(
        plan,
        threshold=outcome.threshold,
        y_val=y[val],
        val_scores=val_scores,
        val_groups=groups[val],
        y_test=y[test],
        test_scores=outcome.test_scores,
        test_groups=groups[test],
        X_fit=X[fit],
        y_fit=y[fit],
        fit_groups=groups[fit],
        X_test=X[test],
    )
    report = result.to_dict()
    report["column"] = spec["column"]
    report["registered"] = (
        "plain model; group thresholds applied at serving"
        if plan.method == THRESHOLD_OPTIMIZER
        else "plain model; the mitigated model is reported only (no ONNX export)"
    )
    outcome.metrics["fairness_mitigation"] = report
    if plan.method == THRESHOLD_OPTIMIZER:
        outcome.model.score_transform = {
            **outcome.model.score_transform,
            "group_thresholds": {
                "column": spec["column"],
                "thresholds": result.group_thresholds,
            },
        }
