"""Deleting a dataset and, on request, what was derived from it.

Dependents: feature sets computed from the dataset, models trained on those, and their
own rows (training jobs, transitions, baselines, drift and bias metrics, alert rules and
alerts). By default a dataset with dependents is refused with 409 naming them; with
``cascade`` they go too, unless a model among them is in PRODUCTION or has logged
predictions (those record what the model decided on real payments, and the dataset is
their lineage), or unfinished work (a feature, training or backfill job) uses any of it.

The order keeps every step consistent and a crash recoverable:

1. one transaction decides (every check above, before anything is touched), removes the
   dependents' rows, and turns the dataset row into a hidden DELETING tombstone that
   records which blob prefixes are still to go;
2. the blobs go (dependents' first, the dataset's last);
3. the tombstone goes.

Readers never see a row whose files are missing: the dependents' rows are gone before
their blobs, and the dataset is hidden. A delete interrupted after step 1 (a crash, a
storage error) leaves the tombstone, and a retried DELETE finishes from its record.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.errors import Conflict, NotFound
from shared.services.registry import is_production

if TYPE_CHECKING:
    from shared.db.models import Dataset, FeatureSet, MLModel
    from shared.ports import BlobStore, Transactions, UnitOfWork

log = logging.getLogger(__name__)

DELETING = "DELETING"
_PENDING_KEY = "pending_blob_prefixes"  # in a tombstone's schema column
_LISTED = 10  # dependents named in the message; details name them all


@dataclass
class _Dependents:
    feature_sets: list[FeatureSet] = field(default_factory=list)
    models: list[MLModel] = field(default_factory=list)
    predicted: list[MLModel] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)

    @property
    def feature_set_ids(self) -> list[uuid.UUID]:
        return [fs.id for fs in self.feature_sets]

    @property
    def model_ids(self) -> list[uuid.UUID]:
        return [m.id for m in self.models]


def _fs_label(fs: FeatureSet) -> str:
    return f"feature set {fs.name!r} ({fs.id})"


def _model_label(m: MLModel) -> str:
    return f"model {m.name} {m.version} ({m.id}, {m.status})"


def _model_prefix(m: MLModel) -> str:
    """Where the model's files are: its storage_path when that names the model alone
    (never a prefix shared with other models), else the layout training writes."""
    path = m.storage_path or ""
    return path if str(m.id) in path else f"models/{m.id}/"


def parse_dataset_id(dataset_id: str | uuid.UUID) -> uuid.UUID:
    """A dataset id from the path; 404 when it is not a UUID."""
    if isinstance(dataset_id, uuid.UUID):
        return dataset_id
    try:
        return uuid.UUID(dataset_id)
    except ValueError:
        raise NotFound(f"Dataset {dataset_id!r} not found.") from None


def _dependents(tx: UnitOfWork, dataset_id: uuid.UUID) -> _Dependents:
    found = _Dependents()
    found.feature_sets = tx.feature_sets.of_dataset(dataset_id)
    fs_ids = found.feature_set_ids
    found.models = tx.models.trained_on(fs_ids)
    found.predicted = [m for m in found.models if tx.models.has_predictions(m.id)]
    for tj in tx.jobs.unfinished_training_on(fs_ids):
        found.busy.append(
            f"training job {tj.id} ({tj.status}) trains on feature set "
            f"{tj.feature_set_id}"
        )
    # jobs keep their subject in their input (no foreign key): few are unfinished
    watched = {str(dataset_id), *map(str, fs_ids), *map(str, found.model_ids)}
    for job in tx.jobs.unfinished():
        subjects = {
            str(job.input.get(key))
            for key in ("dataset_id", "feature_set_id", "model_id")
            if isinstance(job.input, dict) and job.input.get(key)
        }
        if subjects & watched:
            found.busy.append(f"{job.kind} job {job.id} ({job.status}) uses it")
    return found


def _refusal(dataset: Dataset, deps: _Dependents, cascade: bool) -> Conflict | None:
    """The 409 that stops this delete, naming what blocks it; None when it may go."""
    details: list[dict[str, Any]] = []
    reasons: list[str] = []
    if deps.busy:
        details += [{"field": "jobs", "message": b} for b in deps.busy]
        reasons.append(
            "unfinished work uses it: "
            + "; ".join(deps.busy[:_LISTED])
            + " (wait for it to finish or cancel it)"
        )
    if not cascade:
        details += [
            {"field": "feature_sets", "message": f"{_fs_label(fs)} depends on it"}
            for fs in deps.feature_sets
        ]
        details += [
            {
                "field": "models",
                "message": f"{_model_label(m)} was trained on feature set "
                f"{m.feature_set_id}",
            }
            for m in deps.models
        ]
        named = [_fs_label(fs) for fs in deps.feature_sets] + [
            _model_label(m) for m in deps.models
        ]
        if named:
            more = f" and {len(named) - _LISTED} more" if len(named) > _LISTED else ""
            reasons.append(
                f"{', '.join(named[:_LISTED])}{more} depend on it; repeat with "
                "?cascade=true to delete them with the dataset"
            )
    else:
        production = [m for m in deps.models if is_production(m)]
        details += [
            {"field": "models", "message": f"{_model_label(m)} is in PRODUCTION"}
            for m in production
        ]
        if production:
            reasons.append(
                ", ".join(_model_label(m) for m in production[:_LISTED])
                + " is in PRODUCTION; promote another model or roll back first"
            )
        details += [
            {"field": "models", "message": f"{_model_label(m)} has logged predictions"}
            for m in deps.predicted
        ]
        if deps.predicted:
            reasons.append(
                ", ".join(_model_label(m) for m in deps.predicted[:_LISTED])
                + " has logged predictions, the record of what it decided, which "
                "would lose the model and the data it was trained on"
            )
    if not reasons:
        return None
    return Conflict(
        f"Dataset {dataset.name!r} ({dataset.id}) was not deleted: "
        + "; ".join(reasons)
        + ". Nothing was changed.",
        details,
    )


def _remove_rows(tx: UnitOfWork, deps: _Dependents) -> None:
    """The dependents' rows, children first (explicit, not left to ON DELETE)."""
    model_ids, fs_ids = deps.model_ids, deps.feature_set_ids
    tx.jobs.delete_training_of(model_ids, fs_ids)
    tx.models.delete(model_ids)
    tx.feature_sets.delete(fs_ids)


class DatasetDeletion:
    def __init__(self, uow: Transactions, blobs: BlobStore) -> None:
        self.uow = uow
        self.blobs = blobs

    def delete(self, dataset_id: str | uuid.UUID, cascade: bool = False) -> None:
        """Delete the dataset (and with ``cascade`` its dependents), or refuse with
        409 before anything is touched."""
        key = parse_dataset_id(dataset_id)
        # a feature set computed from the dataset while it is being deleted (its job
        # read the dataset before the tombstone) is caught by the next round
        for _ in range(3):
            prefixes = self._decide(key, cascade)
            for prefix in prefixes:
                self.blobs.delete_prefix(prefix)
            if self._finish(key):
                log.info("dataset %s deleted (cascade=%s)", key, cascade)
                return
        raise Conflict(
            f"Dataset {key} kept getting new feature sets while it was being deleted; "
            "retry the delete."
        )

    def _decide(self, key: uuid.UUID, cascade: bool) -> list[str]:
        """Step 1: check, remove the dependents' rows, leave the tombstone; returns
        the blob prefixes to delete, the dataset's last."""
        with self.uow(write=True) as tx:
            dataset = tx.datasets.get_for_update(key)
            if dataset is None:
                raise NotFound(f"Dataset {key} not found.")
            deps = _dependents(tx, key)
            refusal = _refusal(dataset, deps, cascade)
            if refusal is not None:
                raise refusal
            pending: list[str] = []
            if dataset.status == DELETING and isinstance(dataset.schema, dict):
                pending = list(dataset.schema.get(_PENDING_KEY) or [])
            pending += [f"features/{fs_id}/" for fs_id in deps.feature_set_ids]
            pending += [_model_prefix(m) for m in deps.models]
            own = f"datasets/{key}/"
            prefixes = [*dict.fromkeys(p for p in pending if p != own), own]
            _remove_rows(tx, deps)
            dataset.status = DELETING
            dataset.schema = {_PENDING_KEY: prefixes}
        if deps.feature_sets or deps.models:
            log.info(
                "dataset %s: deleting %d feature set(s) and %d model(s) with it",
                key,
                len(deps.feature_sets),
                len(deps.models),
            )
        return prefixes

    def _finish(self, key: uuid.UUID) -> bool:
        """Step 3: remove the tombstone, unless a feature set appeared meanwhile."""
        with self.uow(write=True) as tx:
            dataset = tx.datasets.get_for_update(key)
            if dataset is None:
                return True  # a concurrent delete finished it
            if tx.feature_sets.any_of_dataset(key):
                return False
            tx.datasets.delete(dataset)
            return True
