"""Checking a training request before any job exists: what can be known from the request
and the feature set is refused with a 4xx, not left for the job to fail on."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from shared.db.models import FeatureSet
from shared.errors import Conflict, NotFound, ValidationFailed, field_error
from shared.services.jobs import job_uuid

if TYPE_CHECKING:
    from shared.db.session import Database


def training_config(
    db: Database, request: dict[str, Any]
) -> tuple[FeatureSet, dict[str, Any], dict[str, Any]]:
    """(feature set, hyperparameters, config) of a valid request; the config fixes the
    model id, so a re-run of the job registers the same model."""
    # ml.training loads scikit-learn: imported on first use, not with the API
    from ml.training.algorithms import (
        ALGORITHMS,
        HyperparameterError,
        validate_hyperparameters,
    )

    algorithm = request["algorithm"]
    if algorithm not in ALGORITHMS:
        raise ValidationFailed(
            f"Unknown algorithm {algorithm!r}; see GET /training/algorithms.",
            field_error("algorithm", f"one of {sorted(ALGORITHMS)}"),
        )
    try:
        params = validate_hyperparameters(
            algorithm, request.get("hyperparameters") or {}
        )
    except HyperparameterError as exc:
        raise ValidationFailed(
            str(exc), field_error(f"hyperparameters.{exc.field}", str(exc))
        ) from None
    fs = ready_feature_set(db, request["feature_set_id"])
    target = request.get("target_column") or "is_fraud"
    check_target(fs, target, ALGORITHMS[algorithm].supervised)
    config = {
        "target_column": target,
        "split": split_config(request),
        "threshold": threshold_config(request),
        "model_id": str(uuid.uuid4()),
        "seed": int(request.get("seed") or 42),
    }
    return fs, params, config


def ready_feature_set(db: Database, feature_set_id: str | uuid.UUID) -> FeatureSet:
    with db.session() as s:
        fs = s.get(FeatureSet, job_uuid(feature_set_id, "Feature set"))
        if fs is None:
            raise NotFound(
                f"Feature set {feature_set_id} not found.",
                field_error("feature_set_id", "unknown feature set"),
            )
        if fs.status != "READY":
            raise Conflict(f"Feature set {feature_set_id} is {fs.status}, not READY.")
        return fs


def check_target(fs: FeatureSet, target: str, supervised: bool) -> None:
    """The label must be the feature set's validated 0/1 label column, with both
    classes present: known from the feature set, so refused before any job runs."""
    config = fs.feature_config or {}
    label = config.get("label_column")
    if not supervised and target != label:
        return
    if target != label:
        raise ValidationFailed(
            f"target_column must be the feature set's 0/1 label column ({label!r}); "
            f"{target!r} is not a validated binary label.",
            field_error("target_column", "not the label column"),
        )
    summary = config.get("label_summary") or {}
    if supervised and (not summary.get("positives") or not summary.get("negatives")):
        raise ValidationFailed(
            f"The label {target!r} has only one class in this feature set "
            f"({summary}); a supervised model needs fraud and non-fraud examples.",
            field_error("target_column", "one class only"),
        )


def split_config(request: dict[str, Any]) -> dict[str, Any]:
    split = request.get("split")
    if split:
        if split.get("type") != "time":
            raise ValidationFailed(
                "split.type must be 'time' (or give train_test_split for a random split).",
                field_error("split.type", "expected 'time'"),
            )
        needed = ["train_start", "train_end", "test_start", "test_end"]
        missing = [k for k in needed if not split.get(k)]
        if missing:
            raise ValidationFailed(
                f"A time split needs {needed}.",
                [{"field": f"split.{k}", "message": "Required field"} for k in missing],
            )
        return {
            "type": "time",
            "gap": split.get("gap") or "7d",
            **{k: split[k] for k in needed},
        }
    fraction = request.get("train_test_split", 0.8)
    if not isinstance(fraction, int | float) or not 0.1 <= float(fraction) <= 0.95:
        raise ValidationFailed(
            "train_test_split must be between 0.1 and 0.95.",
            field_error("train_test_split", "between 0.1 and 0.95"),
        )
    return {"type": "random", "train_fraction": float(fraction)}


def threshold_config(request: dict[str, Any]) -> dict[str, Any]:
    ratio = request.get("cost_ratio")
    if ratio is None:
        return {"rule": "max_f1"}
    if not isinstance(ratio, int | float) or ratio <= 0:
        raise ValidationFailed(
            "cost_ratio (cost of a missed fraud / cost of a false alarm) must be > 0.",
            field_error("cost_ratio", "must be > 0"),
        )
    return {"rule": "cost", "cost_ratio": float(ratio)}
