"""The model registry: registering a trained model (its version), stages, baselines that
gate promotion, promotion and rollback with every transition recorded (who, when, why),
and which model is in production.

Versions per name are guarded by the unique (name, version) constraint; exactly one
PRODUCTION model per name is a partial unique index, so two racing promotions cannot
both win: the loser gets 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.db.models import Baseline, MLModel, ModelTransition
from shared.db.types import utcnow
from shared.errors import Conflict, NotFound, ValidationFailed, field_error
from shared.ports import Duplicate
from shared.services.promotion_gates import (
    ONNX_TOLERANCE as ONNX_TOLERANCE,  # re-exported: callers import it from here
)
from shared.services.promotion_gates import (
    OPERATORS as OPERATORS,
)
from shared.services.promotion_gates import (
    baseline_gate,
    bias_gate,
    check_baselines,
    onnx_gate,
)
from shared.timefmt import iso

if TYPE_CHECKING:
    from shared.ports import ModelRepository, Transactions, UnitOfWork

TRAINED, STAGING, PRODUCTION, ARCHIVED = "TRAINED", "STAGING", "PRODUCTION", "ARCHIVED"
METRICS = ("precision", "recall", "f1_score", "auc_roc", "auc_pr", "fpr")

OnlineState = Literal["keep", "replace"]
"""What a promotion or rollback does with a live online feature state: keep it (the
model continues from what was scored live) or replace it from the training data."""

Backfill = Callable[[MLModel, bool], "str | None"]
"""Starts the online backfill for a model going live (replace_live); its job id."""


def production_model(
    models: ModelRepository, name: str | None = None
) -> MLModel | None:
    """Which model is in production (of ``name``; without one, the latest promoted)."""
    model_id = models.production_id(name)
    return None if model_id is None else models.get(model_id)


def is_production(model: MLModel) -> bool:
    return model.status == PRODUCTION


def model_to_dict(m: MLModel, full: bool = True) -> dict[str, Any]:
    details = m.details or {}
    out: dict[str, Any] = {
        "id": str(m.id),
        "name": m.name,
        "version": m.version,
        "algorithm": m.algorithm,
        "status": m.status,
        "metrics": m.metrics,
        "threshold": details.get("threshold"),
        "onnx_max_abs_diff": details.get("onnx_max_abs_diff"),
        "feature_set_id": str(m.feature_set_id) if m.feature_set_id else None,
        "storage_path": m.storage_path,
        "promoted_at": iso(m.promoted_at),
        "created_at": iso(m.created_at),
    }
    if full:
        out["hyperparameters"] = m.hyperparameters
        out["details"] = details
    return out


def baseline_to_dict(b: Baseline) -> dict[str, Any]:
    return {
        "id": str(b.id),
        "metric": b.metric_name,
        "threshold": b.threshold,
        "operator": b.operator,
        "is_active": b.is_active,
        "created_at": iso(b.created_at),
    }


def get_model(models: ModelRepository, model_id: str | uuid.UUID) -> MLModel:
    try:
        key = model_id if isinstance(model_id, uuid.UUID) else uuid.UUID(str(model_id))
    except ValueError:
        raise NotFound(f"Model {model_id!r} not found.") from None
    model = models.get(key)
    if model is None:
        raise NotFound(f"Model {model_id} not found.")
    return model


def next_version(models: ModelRepository, name: str) -> str:
    """One more than the highest major version of ``name`` ("1.0", "2.0", ...)."""
    versions = models.versions(name)
    majors = [int(v.split(".")[0]) for v in versions if v.split(".")[0].isdigit()]
    return f"{max(majors, default=0) + 1}.0"


@dataclass(frozen=True)
class NewModel:
    """A trained model whose files are stored, ready to be registered."""

    id: uuid.UUID
    name: str
    algorithm: str
    hyperparameters: dict[str, Any] | None
    metrics: dict[str, Any]
    storage_path: str
    feature_set_id: uuid.UUID | None
    details: dict[str, Any]


class ModelRegistry:
    def __init__(
        self,
        uow: Transactions,
        *,
        on_change: Callable[[], None] | None = None,
        backfill: Backfill | None = None,
    ) -> None:
        self.uow = uow
        self._on_change = on_change or (lambda: None)
        self._backfill = backfill or (lambda model, replace: None)

    # -- registering ------------------------------------------------------------------

    def is_registered(self, model_id: uuid.UUID) -> bool:
        with self.uow() as tx:
            return tx.models.get(model_id) is not None

    def register(
        self, new: NewModel, also: Callable[[UnitOfWork], None] | None = None
    ) -> str:
        """Add the model as TRAINED with the next version of its name, in one transaction
        with ``also`` (e.g. finishing its job). Returns the version. A concurrent
        registration of the same name can take the version first: one retry."""
        for attempt in (1, 2):
            try:
                with self.uow(write=True) as tx:
                    version = next_version(tx.models, new.name)
                    tx.models.add(
                        MLModel(
                            id=new.id,
                            name=new.name,
                            version=version,
                            algorithm=new.algorithm,
                            hyperparameters=new.hyperparameters,
                            metrics=new.metrics,
                            storage_path=new.storage_path,
                            feature_set_id=new.feature_set_id,
                            details=new.details,
                            status=TRAINED,
                        )
                    )
                    if also is not None:
                        also(tx)
                return version
            except Duplicate:
                if attempt == 2 or self.is_registered(new.id):
                    raise
        raise AssertionError("unreachable")

    # -- baselines --------------------------------------------------------------------

    def set_baselines(
        self, model_id: str, baselines: list[dict[str, Any]]
    ) -> dict[str, Any]:
        details = []
        for i, b in enumerate(baselines):
            if b.get("metric") not in METRICS:
                details.append(
                    {"field": f"baselines.{i}.metric", "message": f"one of {METRICS}"}
                )
            if b.get("operator") not in OPERATORS:
                details.append(
                    {"field": f"baselines.{i}.operator", "message": "gte, lte or eq"}
                )
        if details:
            raise ValidationFailed("Invalid baselines.", details)
        with self.uow(write=True) as tx:
            model = get_model(tx.models, model_id)
            for old in tx.models.active_baselines(model.id):
                old.is_active = False
            tx.models.add_baselines(
                [
                    Baseline(
                        model_id=model.id,
                        metric_name=b["metric"],
                        threshold=float(b["threshold"]),
                        operator=b["operator"],
                    )
                    for b in baselines
                ]
            )
            tx.flush()
            active = tx.models.active_baselines(model.id)
            listed = [baseline_to_dict(b) for b in active]
            check = check_baselines(model, active)
        return {"model_id": model_id, "baselines": listed, "evaluation": check}

    # -- promotion and rollback ---------------------------------------------------------

    def production(self, name: str | None = None) -> MLModel | None:
        with self.uow() as tx:
            return production_model(tx.models, name)

    def promote(
        self,
        model_id: str,
        stage: str,
        reason: str | None,
        override_baselines: bool = False,
        actor: str | None = None,
        *,
        online_state: OnlineState = "keep",
        override_bias: bool = False,
    ) -> dict[str, Any]:
        stage = (stage or "").upper()
        if stage not in (STAGING, PRODUCTION):
            raise ValidationFailed(
                "stage must be 'staging' or 'production'.",
                field_error("stage", "staging or production"),
            )
        if override_baselines and not (reason or "").strip():
            raise ValidationFailed(
                "Overriding baselines needs a written reason.",
                field_error("reason", "required with override_baselines"),
            )
        if override_bias and not (reason or "").strip():
            raise ValidationFailed(
                "Overriding the bias gate needs a written reason.",
                field_error("reason", "required with override_bias"),
            )
        try:
            with self.uow(write=True) as tx:
                model = get_model(tx.models, model_id)
                if model.status == ARCHIVED:
                    raise Conflict(
                        f"Model {model_id} is ARCHIVED; archived models cannot be promoted "
                        "(roll back to it with POST /models/{id}/rollback on the current "
                        "production model)."
                    )
                if model.status == stage:
                    raise Conflict(f"Model {model_id} is already {stage}.")
                if stage == STAGING and model.status != TRAINED:
                    raise Conflict(
                        f"Only TRAINED models move to STAGING (this is {model.status})."
                    )
                if stage == PRODUCTION:
                    current = production_model(tx.models, model.name)
                    _gate(tx.models, model, current, override_baselines)
                    reason = _bias_gate(model, override_bias, reason, actor)
                    if current is not None:
                        _move(
                            tx.models,
                            current,
                            ARCHIVED,
                            "archive",
                            reason,
                            False,
                            actor,
                        )
                        tx.flush()
                    model.promoted_at = utcnow()
                _move(
                    tx.models,
                    model,
                    stage,
                    "promote",
                    reason,
                    override_baselines,
                    actor,
                )
                tx.flush()
                result = model_to_dict(model)
        except Duplicate:
            raise Conflict(
                "Another promotion of this model name finished first; reload and retry."
            ) from None
        if stage == PRODUCTION:
            self._on_change()
            result["online_backfill_job_id"] = self._backfill(
                model, online_state == "replace"
            )
        return result

    def rollback(
        self,
        model_id: str,
        reason: str | None,
        actor: str | None = None,
        *,
        online_state: OnlineState = "keep",
    ) -> dict[str, Any]:
        with self.uow(write=True) as tx:
            model = get_model(tx.models, model_id)
            if model.status != PRODUCTION:
                raise Conflict(
                    f"Model {model_id} is {model.status}; roll back from the PRODUCTION model."
                )
            previous = tx.models.previous_production(model)
            if previous is None:
                raise Conflict(
                    f"No earlier production version of {model.name!r} to roll back to."
                )
            _move(tx.models, model, ARCHIVED, "rollback", reason, False, actor)
            tx.flush()
            _move(tx.models, previous, PRODUCTION, "rollback", reason, False, actor)
            previous.promoted_at = utcnow()
            tx.flush()
        self._on_change()
        return {
            "online_backfill_job_id": self._backfill(
                previous, online_state == "replace"
            ),
            "rolled_back": model_to_dict(model, full=False),
            "production": model_to_dict(previous, full=False),
        }


def _gate(
    models: ModelRepository, model: MLModel, current: MLModel | None, override: bool
) -> None:
    onnx = onnx_gate(model)
    if not onnx.passed:
        raise Conflict(onnx.detail)
    baselines = models.active_baselines(model.id)
    if current is not None and current.id != model.id:
        baselines += models.active_baselines(current.id)
    result = baseline_gate(model, baselines)
    if not result.passed and not override:
        raise Conflict(result.detail, result.failures, code="BASELINE_NOT_MET")


def _bias_gate(
    model: MLModel, override: bool, reason: str | None, actor: str | None
) -> str | None:
    """Refuses a CRITICAL pre-deployment audit unless overridden; an override is
    recorded in the transition's reason (prefixed) and in details.bias_override."""
    result = bias_gate(model)
    if result.passed:
        return reason
    if not override:
        raise Conflict(result.detail, result.failures, code="BIAS_GATE_FAILED")
    critical = [f["field"].removeprefix("bias_audit.") for f in result.failures]
    model.details = {
        **(model.details or {}),
        "bias_override": {
            "reason": reason,
            "actor": actor,
            "critical": critical,
            "at": iso(utcnow()),
        },
    }
    return f"{BIAS_OVERRIDE_PREFIX} ({', '.join(critical)}): {reason}"


BIAS_OVERRIDE_PREFIX = "[bias gate overridden]"


def _move(
    models: ModelRepository,
    model: MLModel,
    to: str,
    action: str,
    reason: str | None,
    override: bool,
    actor: str | None,
) -> None:
    models.add_transition(
        ModelTransition(
            model_id=model.id,
            from_status=model.status,
            to_status=to,
            action=action,
            reason=reason,
            override_baselines=override,
            actor=actor,
        )
    )
    model.status = to
