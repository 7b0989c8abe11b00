"""The models a worker serves: ONNX sessions loaded once per model version, the current
production model swapped in atomically, and one online feature store per feature
configuration (its state cache is shared by every model version trained on it).

Nothing here imports pandas, scikit-learn, xgboost, lightgbm or shap: the scoring path
runs on numpy and onnxruntime. The explainer (native model plus SHAP) loads on the first
``/predict/explain`` of a model, not before.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.errors import Conflict, NotFound, field_error

if TYPE_CHECKING:
    from ml.explain import ModelExplainer
    from ml.scoring.onnx_scorer import OnnxScorer
    from shared.db.session import Database
    from shared.ports import BlobStore, Transactions
    from shared.services.online_features import OnlineFeatureStore

log = logging.getLogger(__name__)

NO_PRODUCTION_MODEL = (
    "No model is in production. Promote a trained model with "
    'POST /api/v1/models/{model_id}/promote {"stage": "production"}, '
    "or name one with model_id."
)


@dataclass
class ServingModel:
    """Everything scoring needs for one model version; immutable once published."""

    id: uuid.UUID
    name: str
    version: str
    algorithm: str
    status: str
    threshold: float
    storage_path: str
    score_transform: dict[str, Any]
    scorer: OnnxScorer
    store: OnlineFeatureStore
    _explainer: ModelExplainer | None = field(default=None, repr=False)
    _explainer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def feature_names(self) -> list[str]:
        return self.scorer.feature_names

    def decision_threshold(self, protected: Mapping[str, Any] | None) -> float:
        """The fraud threshold for one request: a threshold_optimizer model's group
        threshold when ``protected`` ({column: value}) names the row's group, the global
        threshold otherwise."""
        from ml.scoring.transform import decision_threshold

        return decision_threshold(self.score_transform, self.threshold, protected)

    def explainer(self, blobs: Any) -> ModelExplainer:
        """The SHAP explainer on the native model, built on first use (seconds of
        imports: only ``/predict/explain`` pays them)."""
        if self._explainer is None:
            with self._explainer_lock:
                if self._explainer is None:
                    from ml.explain import load_explainer

                    native = blobs.get_bytes(self.storage_path + "model.native")
                    self._explainer = load_explainer(
                        self.algorithm,
                        native,
                        self.feature_names,
                        self.score_transform,
                    )
        return self._explainer


class ModelServer:
    """Loaded models of one worker.

    ``production()`` re-reads which model is in production at most every
    ``refresh_seconds``; when it changed, the new model is loaded completely before it
    replaces the old one in a single reference assignment, and requests keep being
    served by the old one meanwhile: no request sees a half-loaded model.
    """

    def __init__(
        self,
        db: Database,
        uow: Transactions,
        blobs: BlobStore,
        warm_entities: int,
        refresh_seconds: float = 1.0,
        max_models: int = 8,
    ) -> None:
        self.db = db  # the online stores' (shared.services.online_features)
        self.uow = uow
        self.blobs = blobs
        self.warm_entities = warm_entities
        self.refresh_seconds = refresh_seconds
        self.max_models = max_models
        self._models: OrderedDict[uuid.UUID, ServingModel] = OrderedDict()
        self._stores: dict[str, OnlineFeatureStore] = {}
        self._lock = threading.Lock()
        self._load_locks: dict[uuid.UUID, threading.Lock] = {}
        self._refresh_lock = threading.Lock()
        self._production: ServingModel | None = None
        self._checked_at = float("-inf")

    # -- resolving -----------------------------------------------------------------------

    def resolve(self, model_id: str | None) -> ServingModel:
        """The named model, or the production one when ``model_id`` is None."""
        if model_id is None:
            return self.production()
        try:
            key = uuid.UUID(str(model_id))
        except ValueError:
            raise NotFound(
                f"Model {model_id} not found.", field_error("model_id", "not a uuid")
            ) from None
        return self.get(key)

    def production(self) -> ServingModel:
        current = self._production
        if time.monotonic() - self._checked_at < self.refresh_seconds:
            if current is None:
                raise Conflict(NO_PRODUCTION_MODEL, code="NO_PRODUCTION_MODEL")
            return current
        # one thread re-checks; the others go on with the model they have
        if not self._refresh_lock.acquire(blocking=current is None):
            assert current is not None
            return current
        try:
            return self._refresh()
        finally:
            self._refresh_lock.release()

    def _refresh(self) -> ServingModel:
        with self.uow() as tx:
            production_id = tx.models.production_id()
        if production_id is None:
            self._production = None
            self._checked_at = time.monotonic()
            raise Conflict(NO_PRODUCTION_MODEL, code="NO_PRODUCTION_MODEL")
        current = self._production
        if current is None or current.id != production_id:
            loaded = self.get(production_id)  # fully built before it is published
            if current is not None:
                log.info(
                    "production model now %s %s (was %s %s)",
                    loaded.name,
                    loaded.version,
                    current.name,
                    current.version,
                )
            self._production = loaded
        self._checked_at = time.monotonic()
        assert self._production is not None
        return self._production

    def invalidate(self) -> None:
        """Re-check the production model on the next request (called after a promotion
        or rollback in this worker; other workers notice within ``refresh_seconds``)."""
        self._checked_at = float("-inf")

    # -- loading -------------------------------------------------------------------------

    def get(self, model_id: uuid.UUID) -> ServingModel:
        with self._lock:
            model = self._models.get(model_id)
            if model is not None:
                self._models.move_to_end(model_id)
                return model
            load_lock = self._load_locks.setdefault(model_id, threading.Lock())
        with load_lock:  # one load per model, however many requests ask at once
            with self._lock:
                model = self._models.get(model_id)
            if model is None:
                model = self._load(model_id)
                with self._lock:
                    self._models[model_id] = model
                    while len(self._models) > self.max_models:
                        self._models.popitem(last=False)
                    self._load_locks.pop(model_id, None)
        return model

    def _load(self, model_id: uuid.UUID) -> ServingModel:
        from ml.scoring.onnx_scorer import OnnxScorer

        with self.uow() as tx:
            model = tx.models.get(model_id)
            if model is None:
                raise NotFound(f"Model {model_id} not found.")
            feature_set = (
                tx.feature_sets.get(model.feature_set_id)
                if model.feature_set_id is not None
                else None
            )
            details = dict(model.details or {})
            config = dict(feature_set.feature_config or {}) if feature_set else {}
            row = (
                model.name,
                model.version,
                model.algorithm,
                model.status,
                model.storage_path,
            )
        if not details.get("features") or "score_transform" not in details:
            raise Conflict(
                f"Model {model_id} has no servable ONNX export; train it again."
            )
        name, version, algorithm, status, storage_path = row
        onnx = self.blobs.get_bytes(storage_path + "model.onnx")
        scorer = OnnxScorer(onnx, list(details["features"]), details["score_transform"])
        store = self._store(config)
        missing = set(scorer.feature_names) - set(store.engine.feature_names)
        if missing:
            raise Conflict(
                f"Model {model_id} needs features the online store cannot compute: "
                f"{sorted(missing)}"
            )
        log.info("loaded model %s %s (%s)", name, version, algorithm)
        return ServingModel(
            id=model_id,
            name=name,
            version=version,
            algorithm=algorithm,
            status=status,
            threshold=float(details.get("threshold", 0.5)),
            storage_path=storage_path,
            score_transform=dict(details["score_transform"]),
            scorer=scorer,
            store=store,
        )

    def _store(
        self, feature_config: dict[str, Any], *, warm: bool = True
    ) -> OnlineFeatureStore:
        from shared.services.online_features import OnlineFeatureStore

        store = OnlineFeatureStore.for_feature_config(self.db, feature_config)
        with self._lock:
            if store.namespace in self._stores:
                return self._stores[store.namespace]
            self._stores[store.namespace] = store
        limit = self.warm_entities
        if warm and limit > 0:  # a store that will score, not only take labels
            store.warm_in_background(limit)
        return store

    def close(self) -> None:
        """Stop the stores' background warm-ups (``OnlineFeatureStore.close``)."""
        with self._lock:
            stores = list(self._stores.values())
        for store in stores:
            store.close()

    def cache_stats(self) -> list[dict[str, Any]]:
        """The online state caches of this worker (``OnlineFeatureStore.cache_stats``)."""
        with self._lock:
            stores = list(self._stores.values())
        return [store.cache_stats() for store in stores]

    def stores_recording(self, transaction_ids: list[str]) -> list[OnlineFeatureStore]:
        """The stores of every feature configuration whose online state applied any of
        these transactions, loading those this worker has not used yet (a label can
        concern a configuration that no model in this worker has scored with). The
        configurations come from the feature sets, so the records are looked up by
        their whole key (namespace, transaction id)."""
        from shared.services.online_features import (
            feature_set_namespace,
            recorded_namespaces,
        )

        with self.uow() as tx:
            configs = {
                feature_set_namespace(config): config
                for config in tx.feature_sets.configs()
            }
        namespaces = recorded_namespaces(self.db, transaction_ids, set(configs))
        with self._lock:
            found = {n: s for n, s in self._stores.items() if n in namespaces}
        for namespace in namespaces - found.keys():
            found[namespace] = self._store(configs[namespace], warm=False)
        return list(found.values())
