"""Checking a training command before any job exists: what can be known from the request
and the feature set is refused with a 4xx, not left for the job to fail on."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from shared.db.models import FeatureSet
from shared.errors import Conflict, NotFound, ValidationFailed, field_error
from shared.services.jobs import job_uuid
from shared.services.training_command import SplitRequest, StartTraining

__all__ = ["SplitRequest", "StartTraining", "training_config"]

if TYPE_CHECKING:
    from shared.ports import Transactions

WINDOWS = ("train_start", "train_end", "test_start", "test_end")
SPLIT_TYPES = ("out_of_time", "time", "random")
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_VALIDATION_FRACTION = 0.2
DEFAULT_TRAIN_FRACTION = 0.8
CARRIED_PROTECTED = ("gender", "age_group")
MITIGATION_METHODS = ("threshold_optimizer", "exponentiated_gradient")
MITIGATION_CONSTRAINTS = ("demographic_parity", "equalized_odds")


def training_config(
    uow: Transactions, cmd: StartTraining
) -> tuple[FeatureSet, dict[str, Any] | None, dict[str, Any]]:
    """(feature set, hyperparameters or None to search, config) of a valid command;
    the config fixes the model id, so a re-run of the job registers the same model."""
    # ml.training loads scikit-learn: imported on first use, not with the API
    from ml.training.algorithms import (
        ALGORITHMS,
        HyperparameterError,
        validate_hyperparameters,
    )
    from ml.training.pipeline import DEFAULT_SEARCH_SECONDS

    if cmd.algorithm not in ALGORITHMS:
        raise ValidationFailed(
            f"Unknown algorithm {cmd.algorithm!r}; see GET /training/algorithms.",
            field_error("algorithm", f"one of {sorted(ALGORITHMS)}"),
        )
    params: dict[str, Any] | None = None
    if cmd.hyperparameters is not None:
        try:
            params = validate_hyperparameters(cmd.algorithm, cmd.hyperparameters)
        except HyperparameterError as exc:
            raise ValidationFailed(
                str(exc), field_error(f"hyperparameters.{exc.field}", str(exc))
            ) from None
    fs = ready_feature_set(uow, cmd.feature_set_id)
    check_target(fs, cmd.target_column, ALGORITHMS[cmd.algorithm].supervised)
    protected = protected_columns(uow)
    check_protected_features(fs, set(protected.values()), cmd.allow_protected_features)
    mitigation = mitigation_config(cmd.fairness_mitigation, protected)
    label_delay = str((fs.feature_config or {}).get("label_delay") or "7d")
    config: dict[str, Any] = {
        "target_column": cmd.target_column,
        "split": split_config(cmd, label_delay),
        "threshold": threshold_config(cmd),
        "model_id": str(uuid.uuid4()),
        "seed": cmd.seed,
    }
    if cmd.allow_protected_features:
        config["allow_protected_features"] = True
    if mitigation is not None:
        config["fairness_mitigation"] = mitigation
    if cmd.sample_weight_column is not None:
        config["sample_weight_column"] = weight_column(fs, cmd.sample_weight_column)
    if params is None:
        seconds = cmd.search_seconds
        config["search_seconds"] = (
            DEFAULT_SEARCH_SECONDS if seconds is None else float(seconds)
        )
    return fs, params, config


def protected_columns(uow: Transactions) -> dict[str, str]:
    """Active protected attributes by name: their data column."""
    with uow() as tx:
        return {
            a.attribute_name: a.column_name for a in tx.protected_attributes.active()
        }


def check_protected_features(
    fs: FeatureSet, protected: set[str], allowed: bool
) -> None:
    """A protected column (an active attribute's, or the carried gender/age_group) may
    not be a model feature unless the request allows it explicitly."""
    names = [str(f.get("name")) for f in fs.features or []]
    used = [n for n in names if n in protected | set(CARRIED_PROTECTED)]
    if used and not allowed:
        raise ValidationFailed(
            f"The feature set uses protected columns {used} as model features; "
            "set allow_protected_features to train on them anyway.",
            [
                {"field": f"features.{n}", "message": "protected attribute column"}
                for n in used
            ],
        )


def mitigation_config(
    request: dict[str, str] | None, protected: dict[str, str]
) -> dict[str, str] | None:
    """The mitigation as the job applies it, with the attribute's data column."""
    if request is None:
        return None
    details = []
    method, constraint = request.get("method"), request.get("constraint")
    attribute = request.get("attribute")
    if method not in MITIGATION_METHODS:
        details.append(
            {
                "field": "fairness_mitigation.method",
                "message": f"one of {list(MITIGATION_METHODS)}",
            }
        )
    if constraint not in MITIGATION_CONSTRAINTS:
        details.append(
            {
                "field": "fairness_mitigation.constraint",
                "message": f"one of {list(MITIGATION_CONSTRAINTS)}",
            }
        )
    if attribute not in protected:
        details.append(
            {
                "field": "fairness_mitigation.attribute",
                "message": f"not an active protected attribute; active: "
                f"{sorted(protected)}",
            }
        )
    if details:
        raise ValidationFailed("Invalid fairness_mitigation.", details)
    assert method and constraint and attribute
    return {
        "method": method,
        "constraint": constraint,
        "attribute": attribute,
        "column": protected[attribute],
    }


def ready_feature_set(uow: Transactions, feature_set_id: str | uuid.UUID) -> FeatureSet:
    with uow() as tx:
        fs = tx.feature_sets.get(job_uuid(feature_set_id, "Feature set"))
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


def weight_column(fs: FeatureSet, column: str) -> str:
    """A sample-weight column must be one the feature set carries next to its
    features."""
    carried = (fs.feature_config or {}).get("carried_columns") or []
    if column not in carried:
        raise ValidationFailed(
            f"The feature set carries no column {column!r} to weigh rows by.",
            field_error("sample_weight_column", f"one of {carried}"),
        )
    return column


def split_config(cmd: StartTraining, label_delay: str) -> dict[str, Any]:
    """The split as the job applies it (`ml.training.splits.SplitPlan`'s fields)."""
    split = cmd.split or SplitRequest()
    kind = split.type or (
        "time"
        if any(getattr(split, k) for k in WINDOWS)
        else "random"
        if cmd.train_test_split is not None
        else "out_of_time"
    )
    if kind not in SPLIT_TYPES:
        raise ValidationFailed(
            f"split.type must be one of {list(SPLIT_TYPES)}.",
            field_error("split.type", f"one of {list(SPLIT_TYPES)}"),
        )
    config: dict[str, Any] = {
        "type": kind,
        "gap": split.gap or label_delay,
        "validation_fraction": _fraction(
            split.validation_fraction,
            DEFAULT_VALIDATION_FRACTION,
            "split.validation_fraction",
        ),
    }
    if kind == "random":
        config["train_fraction"] = _fraction(
            cmd.train_test_split, DEFAULT_TRAIN_FRACTION, "train_test_split", 0.1, 0.95
        )
    elif kind == "time":
        missing = [k for k in WINDOWS if not getattr(split, k)]
        if missing:
            raise ValidationFailed(
                f"A time split needs {list(WINDOWS)}.",
                [{"field": f"split.{k}", "message": "Required field"} for k in missing],
            )
        config.update({k: getattr(split, k) for k in WINDOWS})
    else:
        config["test_fraction"] = _fraction(
            split.test_fraction, DEFAULT_TEST_FRACTION, "split.test_fraction"
        )
    return config


def _fraction(
    value: float | None,
    default: float,
    name: str,
    low: float = 0.01,
    high: float = 0.9,
) -> float:
    if value is None:
        return default
    if not low <= float(value) <= high:
        raise ValidationFailed(
            f"{name} must be between {low} and {high}.",
            field_error(name, f"between {low} and {high}"),
        )
    return float(value)


def threshold_config(cmd: StartTraining) -> dict[str, Any]:
    """max_f1 unless a cost is given; costs default to the documented ones."""
    from ml.training.pipeline import DEFAULT_COST_FALSE_ALARM, DEFAULT_COST_MISSED_FRAUD

    for name in ("cost_missed_fraud", "cost_false_alarm", "cost_ratio"):
        value = getattr(cmd, name)
        if value is not None and not value > 0:
            raise ValidationFailed(
                f"{name} must be > 0.", field_error(name, "must be > 0")
            )
    if cmd.cost_ratio is not None and cmd.cost_missed_fraud is not None:
        raise ValidationFailed(
            "Give cost_missed_fraud (with cost_false_alarm) or cost_ratio, not both.",
            field_error("cost_ratio", "conflicts with cost_missed_fraud"),
        )
    false_alarm = cmd.cost_false_alarm or DEFAULT_COST_FALSE_ALARM
    missed = cmd.cost_missed_fraud or (
        cmd.cost_ratio * false_alarm
        if cmd.cost_ratio is not None
        else DEFAULT_COST_MISSED_FRAUD
    )
    given = (cmd.cost_missed_fraud, cmd.cost_false_alarm, cmd.cost_ratio)
    rule = "max_f1" if all(v is None for v in given) else "cost"
    return {
        "rule": rule,
        "cost_missed_fraud": float(missed),
        "cost_false_alarm": float(false_alarm),
    }
