"""Reading the model registry: lists, details, metrics, comparisons and the history of
transitions. Writes (registering, baselines, promotion, rollback) are in
shared/services/registry.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.errors import ValidationFailed, field_error
from shared.services.pagination import Page, check_page
from shared.services.registry import (
    METRICS,
    OPERATORS,
    baseline_to_dict,
    get_model,
    model_to_dict,
)
from shared.timefmt import iso

if TYPE_CHECKING:
    from shared.db.models import ModelTransition
    from shared.ports import Transactions

__all__ = ["METRICS", "OPERATORS", "ModelCatalog", "model_to_dict"]


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


class ModelCatalog:
    def __init__(self, uow: Transactions) -> None:
        self.uow = uow

    def list_models(
        self,
        page: int,
        page_size: int,
        name: str | None = None,
        status: str | None = None,
    ) -> Page[dict[str, Any]]:
        check_page(page, page_size)
        with self.uow() as tx:
            result = tx.models.page(
                page, page_size, name or None, status.upper() if status else None
            )
            items = [model_to_dict(m, full=False) for m in result.items]
        return Page(items, result.page, result.page_size, result.total)

    def get(self, model_id: str) -> dict[str, Any]:
        with self.uow() as tx:
            model = get_model(tx.models, model_id)
            out = model_to_dict(model)
            out["baselines"] = [
                baseline_to_dict(b) for b in tx.models.active_baselines(model.id)
            ]
            return out

    def metrics(self, model_id: str) -> dict[str, Any]:
        with self.uow() as tx:
            m = get_model(tx.models, model_id)
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
        with self.uow() as tx:
            rows = [model_to_dict(get_model(tx.models, i), full=False) for i in ids]
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
        with self.uow() as tx:
            model = get_model(tx.models, model_id)
            rows = tx.models.transitions_of_name(model.name)
            return [_transition_to_dict(t) for t in rows]
