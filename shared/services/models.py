"""Model registry: versions per name, baselines that gate promotion, promotion and
rollback with every transition recorded (who, when, why).

Exactly one PRODUCTION model per name is a partial unique index in the database, so two
racing promotions cannot both win: the loser gets 409.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.bootstrap import AppContext
from shared.db.models import Baseline, MLModel, ModelTransition
from shared.db.types import utcnow
from shared.errors import Conflict, NotFound, ValidationFailed, field_error
from shared.services.online_backfill import start_backfill
from shared.services.pagination import Page, paginate
from shared.timefmt import iso

TRAINED, STAGING, PRODUCTION, ARCHIVED = "TRAINED", "STAGING", "PRODUCTION", "ARCHIVED"
METRICS = ("precision", "recall", "f1_score", "auc_roc", "auc_pr", "fpr")
OPERATORS = {
    "gte": lambda v, t: v >= t,
    "lte": lambda v, t: v <= t,
    "eq": lambda v, t: v == t,
}
ONNX_TOLERANCE = 1e-4


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


def _transition_to_dict(t: ModelTransition) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "model_id": str(t.model_id),
        "from_status": t.from_status,
        "to_status": t.to_status,
        "action": t.action,
        "reason": t.reason,
        "override_baselines": t.override_baselines,
        "actor": t.actor,
        "created_at": iso(t.created_at),
    }


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"Model {value!r} not found.") from None


OnlineState = Literal["keep", "replace"]
"""What a promotion or rollback does with a live online feature state: keep it (the
model continues from what was scored live) or replace it from the training data."""


class ModelRegistry:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @staticmethod
    def _get(s: Session, model_id: str) -> MLModel:
        model = s.get(MLModel, _uuid(model_id))
        if model is None:
            raise NotFound(f"Model {model_id} not found.")
        return model

    def list_models(
        self,
        page: int,
        page_size: int,
        name: str | None = None,
        status: str | None = None,
    ) -> Page[dict[str, Any]]:
        query = select(MLModel).order_by(MLModel.created_at.desc(), MLModel.id)
        if name:
            query = query.where(MLModel.name == name)
        if status:
            query = query.where(MLModel.status == status.upper())
        with self.ctx.db.session() as s:
            result = paginate(s, query, page, page_size)
            items = [model_to_dict(m, full=False) for m in result.items]
        return Page(items, result.page, result.page_size, result.total)

    def get(self, model_id: str) -> dict[str, Any]:
        with self.ctx.db.session() as s:
            model = self._get(s, model_id)
            out = model_to_dict(model)
            out["baselines"] = [
                self._baseline_dict(b) for b in self._baselines(s, model.id)
            ]
            return out

    def metrics(self, model_id: str) -> dict[str, Any]:
        with self.ctx.db.session() as s:
            m = self._get(s, model_id)
            details = m.details or {}
            return {
                "model_id": str(m.id),
                "version": m.version,
                "metrics": m.metrics,
                "threshold": details.get("threshold"),
                "roc_curve": details.get("roc_curve"),
                "pr_curve": details.get("pr_curve"),
                "feature_importance": details.get("feature_importance"),
            }

    def compare(self, ids: list[str]) -> dict[str, Any]:
        if not 2 <= len(ids) <= 10:
            raise ValidationFailed(
                "Give between 2 and 10 model ids: ?ids=a,b,c",
                field_error("ids", "2 to 10 ids"),
            )
        with self.ctx.db.session() as s:
            models = [self._get(s, i) for i in ids]
            rows = [model_to_dict(m, full=False) for m in models]
        best = {}
        for metric in METRICS:
            values = [(r["metrics"] or {}).get(metric) for r in rows]
            present = [
                (v, r["id"]) for v, r in zip(values, rows, strict=True) if v is not None
            ]
            if present:
                pick = min(present) if metric == "fpr" else max(present)
                best[metric] = pick[1]
        return {"models": rows, "metrics": list(METRICS), "best": best}

    def transitions(self, model_id: str) -> list[dict[str, Any]]:
        with self.ctx.db.session() as s:
            model = self._get(s, model_id)
            rows = s.scalars(
                select(ModelTransition)
                .join(MLModel, MLModel.id == ModelTransition.model_id)
                .where(MLModel.name == model.name)
                .order_by(ModelTransition.created_at, ModelTransition.id)
            )
            return [_transition_to_dict(t) for t in rows]

    # -- baselines ----------------------------------------------------------------------

    @staticmethod
    def _baseline_dict(b: Baseline) -> dict[str, Any]:
        return {
            "id": str(b.id),
            "metric": b.metric_name,
            "threshold": b.threshold,
            "operator": b.operator,
            "is_active": b.is_active,
            "created_at": iso(b.created_at),
        }

    @staticmethod
    def _baselines(s: Session, model_id: uuid.UUID) -> list[Baseline]:
        return list(
            s.scalars(
                select(Baseline).where(
                    Baseline.model_id == model_id, Baseline.is_active
                )
            )
        )

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
        with self.ctx.db.session(write=True) as s:
            model = self._get(s, model_id)
            for old in self._baselines(s, model.id):
                old.is_active = False
            s.add_all(
                Baseline(
                    model_id=model.id,
                    metric_name=b["metric"],
                    threshold=float(b["threshold"]),
                    operator=b["operator"],
                )
                for b in baselines
            )
            s.flush()
            active = [self._baseline_dict(b) for b in self._baselines(s, model.id)]
            check = self._check(model, self._baselines(s, model.id))
        return {"model_id": model_id, "baselines": active, "evaluation": check}

    @staticmethod
    def _check(model: MLModel, baselines: list[Baseline]) -> list[dict[str, Any]]:
        out = []
        for b in baselines:
            value = (model.metrics or {}).get(b.metric_name)
            passed = value is not None and OPERATORS[b.operator](
                float(value), b.threshold
            )
            out.append(
                {
                    "metric": b.metric_name,
                    "operator": b.operator,
                    "threshold": b.threshold,
                    "value": value,
                    "passed": passed,
                }
            )
        return out

    # -- promotion ------------------------------------------------------------------

    def promote(
        self,
        model_id: str,
        stage: str,
        reason: str | None,
        override_baselines: bool = False,
        actor: str | None = None,
        *,
        online_state: OnlineState = "keep",
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
        try:
            with self.ctx.db.session(write=True) as s:
                model = self._get(s, model_id)
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
                    self._gate(s, model, override_baselines)
                    current = s.scalar(
                        select(MLModel).where(
                            MLModel.name == model.name, MLModel.status == PRODUCTION
                        )
                    )
                    if current is not None:
                        self._move(
                            s, current, ARCHIVED, "archive", reason, False, actor
                        )
                        s.flush()
                    model.promoted_at = utcnow()
                self._move(
                    s, model, stage, "promote", reason, override_baselines, actor
                )
                s.flush()
                result = model_to_dict(model)
        except IntegrityError:
            raise Conflict(
                "Another promotion of this model name finished first; reload and retry."
            ) from None
        if stage == PRODUCTION:
            self.ctx.model_changed()
            result["online_backfill_job_id"] = start_backfill(
                self.ctx, model, replace_live=online_state == "replace"
            )
        return result

    def _gate(self, s: Session, model: MLModel, override: bool) -> None:
        details = model.details or {}
        diff = details.get("onnx_max_abs_diff")
        if diff is None or float(diff) > ONNX_TOLERANCE:
            raise Conflict(
                f"The ONNX export differs from the native model by {diff} (> {ONNX_TOLERANCE});"
                " it cannot serve /predict and cannot be promoted."
            )
        current = s.scalar(
            select(MLModel).where(
                MLModel.name == model.name, MLModel.status == PRODUCTION
            )
        )
        baselines = self._baselines(s, model.id)
        if current is not None and current.id != model.id:
            baselines += self._baselines(s, current.id)
        failed = [c for c in self._check(model, baselines) if not c["passed"]]
        if failed and not override:
            raise Conflict(
                "The model misses active baselines; pass override_baselines with a reason "
                "to promote it anyway.",
                [
                    {
                        "field": f"metrics.{c['metric']}",
                        "message": f"{c['value']} is not {c['operator']} {c['threshold']}",
                    }
                    for c in failed
                ],
                code="BASELINE_NOT_MET",
            )

    @staticmethod
    def _move(
        s: Session,
        model: MLModel,
        to: str,
        action: str,
        reason: str | None,
        override: bool,
        actor: str | None,
    ) -> None:
        s.add(
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

    def rollback(
        self,
        model_id: str,
        reason: str | None,
        actor: str | None = None,
        *,
        online_state: OnlineState = "keep",
    ) -> dict[str, Any]:
        with self.ctx.db.session(write=True) as s:
            model = self._get(s, model_id)
            if model.status != PRODUCTION:
                raise Conflict(
                    f"Model {model_id} is {model.status}; roll back from the PRODUCTION model."
                )
            previous = s.scalar(
                select(MLModel)
                .join(ModelTransition, ModelTransition.model_id == MLModel.id)
                .where(
                    MLModel.name == model.name,
                    MLModel.id != model.id,
                    ModelTransition.from_status == PRODUCTION,
                )
                .order_by(ModelTransition.created_at.desc())
                .limit(1)
            )
            if previous is None:
                raise Conflict(
                    f"No earlier production version of {model.name!r} to roll back to."
                )
            self._move(s, model, ARCHIVED, "rollback", reason, False, actor)
            s.flush()
            self._move(s, previous, PRODUCTION, "rollback", reason, False, actor)
            previous.promoted_at = utcnow()
            s.flush()
        self.ctx.model_changed()
        return {
            "online_backfill_job_id": start_backfill(
                self.ctx, previous, replace_live=online_state == "replace"
            ),
            "rolled_back": model_to_dict(model, full=False),
            "production": model_to_dict(previous, full=False),
        }

    def production(self, name: str | None = None) -> MLModel | None:
        with self.ctx.db.session() as s:
            query = select(MLModel).where(MLModel.status == PRODUCTION)
            if name:
                query = query.where(MLModel.name == name)
            return s.scalars(query.order_by(MLModel.promoted_at.desc())).first()
