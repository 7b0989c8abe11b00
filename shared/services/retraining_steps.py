"""The steps of a retraining job, each the body of one Durable activity
(orchestrations/retraining.py). Each is idempotent: what it creates has an id or a name
fixed in the job's input, so a re-run finds it.

1. assemble: the data strategy's rows, with a ``sample_weight`` column, stored as a new
   dataset ``retraining-<job id>``.
2. features: the feature job of the champion's configuration on that dataset (the
   features service's own job, recorded and run here).
3. train: the training job of the champion's algorithm and hyperparameters, weighted,
   out-of-time split; the challenger it registers moves to STAGING.
4. evaluate: champion and challenger scored through their ONNX exports on the same
   holdout, the challenger's test period (the last part of the assembled data, after
   the gap, which it did not train on).
5. gates: see shared/services/retraining_gates.py.
6. promote (when asked and every gate passed): through ``ModelRegistry.promote``, so
   its own gates and the online state's keep apply.

A step answers ``{"status": "OK", ...}`` with the ids the next needs, ``FAILED`` with
the reason for what the data or the request make impossible (retrying cannot help),
``CANCELLED`` or ``ENDED`` (the job finished meanwhile); anything else it raises, for
the orchestration to retry.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.adapters.blobs.local_copy import local_file
from shared.errors import AppError, Conflict, NotFound
from shared.services.jobs import COMPLETED, FINISHED, JobCancelled, job_uuid
from shared.services.registry import PRODUCTION, TRAINED, get_model, production_model
from shared.services.retraining_gates import (
    ALL_PASSED,
    Gate,
    decided_by,
    evaluate_gates,
)

if TYPE_CHECKING:
    import pandas as pd

    from shared.db.models import FeatureSet, MLModel
    from shared.ports import BlobStore, Transactions
    from shared.services.datasets import DatasetService
    from shared.services.features import FeatureService
    from shared.services.jobs import JobService
    from shared.services.registry import ModelRegistry
    from shared.services.training import TrainingService

log = logging.getLogger(__name__)

OK, FAILED, CANCELLED, ENDED = "OK", "FAILED", "CANCELLED", "ENDED"
ACTOR = "retraining"
TARGET = "is_fraud"
STAGES = {
    "assemble": ("assembling the data", 0.02),
    "features": ("computing features", 0.15),
    "train": ("training the challenger", 0.35),
    "evaluate": ("scoring champion and challenger on the holdout", 0.8),
    "gates": ("checking the gates", 0.9),
    "promote": ("promoting the challenger", 0.95),
}
Step = Callable[[dict[str, Any]], dict[str, Any]]


def dataset_name(job_id: str) -> str:
    return f"retraining-{job_id}"


def feature_request(config: dict[str, Any]) -> dict[str, Any]:
    """A stored feature configuration as a compute request asks for it again: the
    same windows, and the features a stored configuration leaves off still off."""
    from ml.features.config import ADDED_KEYS, FeatureConfig

    known = set(FeatureConfig().to_dict())
    body = FeatureConfig.from_dict(
        {k: v for k, v in config.items() if k in known}
    ).to_dict()
    for key, off in ADDED_KEYS.items():
        body.setdefault(key, list(off))
    body.pop("groups")
    return body


class RetrainingWorkflow:
    def __init__(
        self,
        uow: Transactions,
        blobs: BlobStore,
        jobs: JobService,
        datasets: DatasetService,
        features: FeatureService,
        training: TrainingService,
        registry: ModelRegistry,
        max_ap_drop: float,
    ) -> None:
        self.uow = uow
        self.blobs = blobs
        self.jobs = jobs
        self.datasets = datasets
        self.features = features
        self.training = training
        self.registry = registry
        self.max_ap_drop = max_ap_drop

    # -- the activities -------------------------------------------------------------

    def run_step(self, step: str, refs: dict[str, Any]) -> dict[str, Any]:
        """Run one step for the job ``refs["job_id"]`` with the ids earlier steps
        handed on."""
        bodies: dict[str, Step] = {
            "assemble": self._assemble,
            "features": self._features,
            "train": self._train,
            "evaluate": self._evaluate,
            "gates": self._gates,
            "promote": self._promote,
        }
        job_id = refs["job_id"]
        stage, progress = STAGES[step]
        ended = self.jobs.get_row(job_id).status
        if ended in FINISHED:  # ended elsewhere (a cancel, a restart's clean-up)
            return {"status": ENDED, "job_status": ended}
        try:
            payload = self.jobs.start(job_id, stage)
            self._update(job_id, progress, stage, stage=step)
            return {"status": OK, **bodies[step]({**payload, **refs})}
        except JobCancelled:
            return {"status": CANCELLED}
        except (AppError, ValueError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            field = getattr(exc, "field", None)
            if field:
                reason = f"{reason} (field: {field})"
            return {"status": FAILED, "error": reason}

    def finish(self, job_id: str) -> dict[str, Any]:
        """The job COMPLETED with its report (unless it was cancelled meanwhile)."""
        job = self.jobs.get_row(job_id)
        if self.jobs.is_stopping(job_id):
            self.jobs.fail(job_id, "cancelled")
            return {"status": CANCELLED}
        result = dict(job.result or {})
        result.update(stage="done", promoted=bool(result.get("promoted")))
        self.jobs.complete(job_id, result)
        log.info(
            "retraining job %s done: %s, promoted %s",
            job_id,
            result.get("decided_by"),
            result["promoted"],
        )
        return {"status": COMPLETED, "decided_by": result.get("decided_by")}

    def fail(self, job_id: str, step: str, reason: str) -> None:
        """End the job FAILED naming the step (CANCELLED when a cancel was asked)."""
        try:
            self._update(job_id, None, None, stage="failed", failed_step=step)
        except JobCancelled:
            pass  # the fail below ends it CANCELLED
        self.jobs.fail(job_id, f"{step}: {reason}")

    # -- shared with the service ----------------------------------------------------

    def gates(
        self,
        challenger_id: str,
        champion_id: str,
        champion_metrics: dict[str, Any],
        challenger_metrics: dict[str, Any],
    ) -> list[Gate]:
        """The gates as they stand now: the active baselines of the challenger, of
        the champion it was retrained from and of the model in production."""
        with self.uow() as tx:
            challenger = get_model(tx.models, challenger_id)
            current = production_model(tx.models, challenger.name)
            owners = [challenger.id, uuid.UUID(champion_id)]
            if current is not None:
                owners.append(current.id)
            baselines = [
                b
                for owner in dict.fromkeys(owners)
                for b in tx.models.active_baselines(owner)
            ]
            return evaluate_gates(
                challenger,
                baselines,
                champion_metrics,
                challenger_metrics,
                self.max_ap_drop,
            )

    def promote_challenger(
        self, challenger_id: str, reason: str, actor: str | None
    ) -> dict[str, Any]:
        """Into production through the registry, keeping a live online state; a
        challenger already there (a re-run step) is left as it is."""
        with self.uow() as tx:
            status = get_model(tx.models, challenger_id).status
        if status == PRODUCTION:
            return {"model_id": challenger_id, "already_in_production": True}
        answer = self.registry.promote(
            challenger_id, "production", reason, actor=actor, online_state="keep"
        )
        return {
            "model_id": challenger_id,
            "version": answer.get("version"),
            "promoted_at": answer.get("promoted_at"),
            "online_backfill_job_id": answer.get("online_backfill_job_id"),
            "online_state": "keep",
        }

    # -- the steps ------------------------------------------------------------------

    def _assemble(self, job: dict[str, Any]) -> dict[str, Any]:
        from ml.training.data_strategy import AssemblyPlan, assemble

        name = dataset_name(job["job_id"])
        with self.uow() as tx:
            existing = tx.datasets.id_named(name)
        if existing is not None:  # an earlier run stored it
            done = self.datasets.version(str(existing), None)
            return {"dataset_id": str(existing), "dataset_version": done.version}
        _, fs = self._champion(job)
        mapping = dict((fs.feature_config or {}).get("column_mapping") or {})
        strategy = job["data_strategy"]
        weights = strategy.get("sample_weights")
        plan = AssemblyPlan(
            strategy=strategy["type"],
            timestamp_column=mapping.get("timestamp", "timestamp"),
            id_column=mapping.get("transaction_id", "transaction_id"),
            shares=(weights["new"], weights["historical"]) if weights else None,
            window_ns=strategy.get("window_ns"),
        )
        new = self._read(strategy["new"]["storage_path"])
        old = strategy.get("historical")
        historical = self._read(old["storage_path"]) if old else None
        assembled = assemble(new, historical, plan)
        del new, historical
        created = self._store_dataset(
            name, f"Retraining job {job['job_id']}: {strategy['type']}", assembled.frame
        )
        summary = {
            "dataset_id": created["id"],
            "dataset_version": created["version"],
            "strategy": strategy["type"],
            "sample_weights": weights,
            "window": strategy.get("window"),
            **assembled.summary(),
        }
        self._record_step(job["job_id"], "assemble", summary)
        return {"dataset_id": created["id"], "dataset_version": created["version"]}

    def _features(self, job: dict[str, Any]) -> dict[str, Any]:
        from ml.features import ROLES
        from ml.training.data_strategy import SAMPLE_WEIGHT
        from shared.services.feature_commands import ComputeCommand

        features_job = job_uuid(job["features_job_id"])
        self._record_step(
            job["job_id"], "features", {"features_job_id": str(features_job)}
        )
        with self.uow() as tx:
            recorded = tx.jobs.get(features_job) is not None
        if not recorded:
            _, fs = self._champion(job)
            config = dict(fs.feature_config or {})
            dataset = self.datasets.version(job["dataset_id"], job["dataset_version"])
            columns = {c["name"] for c in dataset.schema["columns"]}
            carried = [
                c
                for c in config.get("carried_columns") or []
                if c not in ROLES and c in columns and c != SAMPLE_WEIGHT
            ]
            self.features.record_compute(
                ComputeCommand(
                    dataset_id=job["dataset_id"],
                    dataset_version=job["dataset_version"],
                    feature_groups=tuple(config.get("groups") or ()) or None,
                    output_name=dataset_name(job["job_id"]),
                    column_mapping=dict(config.get("column_mapping") or {}),
                    config=feature_request(config),
                    carry_columns=(*carried, SAMPLE_WEIGHT),
                ),
                job_id=features_job,
            )
        done = self.features.run_job(str(features_job))
        if done["status"] != COMPLETED:
            raise Conflict(
                f"the feature job {features_job} ended {done['status']}: "
                f"{done.get('error')}"
            )
        self._record_step(
            job["job_id"],
            "features",
            {
                "features_job_id": str(features_job),
                "feature_set_id": done["feature_set_id"],
                "row_count": done["row_count"],
                "feature_count": done["feature_count"],
            },
        )
        return {"feature_set_id": done["feature_set_id"]}

    def _train(self, job: dict[str, Any]) -> dict[str, Any]:
        training_job = job_uuid(job["training_job_id"])
        self._record_step(
            job["job_id"], "train", {"training_job_id": str(training_job)}
        )
        with self.uow() as tx:
            recorded = tx.jobs.get(training_job) is not None
        if not recorded:
            champion, _ = self._champion(job)
            self.training.record(
                self._training_command(champion, job["feature_set_id"]),
                job_id=training_job,
            )
        self.training.run(str(training_job))
        row = self.training.get_row(training_job)
        if row.status != COMPLETED or row.model_id is None:
            raise Conflict(
                f"the training job {training_job} ended {row.status}: "
                f"{row.error_message}"
            )
        challenger_id = str(row.model_id)
        with self.uow() as tx:
            challenger = get_model(tx.models, challenger_id)
        if challenger.status == TRAINED:
            self.registry.promote(
                challenger_id,
                "staging",
                f"challenger of retraining job {job['job_id']}",
                actor=ACTOR,
            )
        self._record_step(
            job["job_id"],
            "train",
            {
                "training_job_id": str(training_job),
                "challenger_model_id": challenger_id,
                "version": challenger.version,
                "algorithm": challenger.algorithm,
                "hyperparameters": challenger.hyperparameters,
            },
            challenger_model_id=challenger_id,
        )
        return {"challenger_model_id": challenger_id}

    def _training_command(self, champion: MLModel, feature_set_id: str) -> Any:
        from ml.training.data_strategy import SAMPLE_WEIGHT
        from shared.services.training_command import SplitRequest, StartTraining

        config = self._champion_training_config(champion)
        split = config.get("split") or {}
        threshold = config.get("threshold") or {}
        costly = threshold.get("rule") == "cost"
        return StartTraining(
            name=champion.name,
            feature_set_id=feature_set_id,
            algorithm=champion.algorithm,
            hyperparameters=dict(champion.hyperparameters or {}),
            # the holdout must be the most recent period, whatever the champion used
            split=SplitRequest(
                type="out_of_time",
                gap=split.get("gap"),
                test_fraction=split.get("test_fraction"),
                validation_fraction=split.get("validation_fraction"),
            ),
            cost_missed_fraud=threshold.get("cost_missed_fraud") if costly else None,
            cost_false_alarm=threshold.get("cost_false_alarm") if costly else None,
            seed=int(config.get("seed", 42)),
            sample_weight_column=SAMPLE_WEIGHT,
        )

    def _champion_training_config(self, champion: MLModel) -> dict[str, Any]:
        raw = (champion.details or {}).get("training_job_id")
        if not raw:
            return {}
        with self.uow() as tx:
            row = tx.jobs.get_training(uuid.UUID(str(raw)))
            return dict(row.config or {}) if row is not None else {}

    def _evaluate(self, job: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from ml.training.splits import make_splits
        from shared.services.training_run import TrainingRun

        champion, _ = self._champion(job)
        with self.uow() as tx:
            challenger = get_model(tx.models, job["challenger_model_id"])
            fs = tx.feature_sets.get(uuid.UUID(job["feature_set_id"]))
            row = tx.jobs.get_training(job_uuid(job["training_job_id"]))
            config = dict(row.config or {}) if row is not None else None
        if fs is None or config is None:
            raise NotFound("the challenger's feature set or training job is gone")
        rows = self.training.runner.load_rows(fs, config["target_column"])
        if rows.y is None:
            raise Conflict("the assembled data has no label to evaluate with")
        plan = TrainingRun.split_plan(config)
        splits = make_splits(plan, rows.timestamps_ns, rows.y)
        test = splits.test[~np.isnan(rows.y[splits.test])]
        X, y = rows.X[test], rows.y[test]
        blocks = {
            "champion": self._score(champion, rows.names, X, y),
            "challenger": self._score(challenger, rows.names, X, y),
        }
        start = splits.periods.get("test_start")
        trained_until = ((champion.metrics or {}).get("split") or {}).get(
            "validation_end"
        )
        holdout = {
            "feature_set_id": str(fs.id),
            "start": start,
            "end": splits.periods.get("test_end"),
            "gap": plan.gap,
            "rows": int(test.size),
            "positives": int(np.sum(y == 1)),
            "rows_train": int(splits.train.size),
            # the new data overlaps the champion's: it is judged on rows it learnt
            "champion_trained_on_holdout": bool(
                trained_until and start and trained_until >= start
            ),
        }
        summary = {
            "holdout_rows": holdout["rows"],
            "champion_auc_pr": blocks["champion"]["metrics"]["auc_pr"],
            "challenger_auc_pr": blocks["challenger"]["metrics"]["auc_pr"],
        }
        self._record_step(job["job_id"], "evaluate", summary, holdout=holdout, **blocks)
        return {}

    def _score(
        self, model: MLModel, names: list[str], X: Any, y: Any
    ) -> dict[str, Any]:
        from ml.scoring import OnnxScorer
        from ml.training.holdout import holdout_metrics, score_columns

        details = model.details or {}
        features = list(details.get("features") or [])
        if not features or "score_transform" not in details:
            raise Conflict(f"Model {model.id} has no ONNX export to score with.")
        onnx = self.blobs.get_bytes(model.storage_path + "model.onnx")
        scorer = OnnxScorer(onnx, features, dict(details["score_transform"]))
        scores = score_columns(scorer, names, X)
        return {
            "model_id": str(model.id),
            "name": model.name,
            "version": model.version,
            "algorithm": model.algorithm,
            "threshold": details.get("threshold"),
            "metrics": holdout_metrics(y, scores, float(details["threshold"])),
            "missing_features": [f for f in features if f not in names],
        }

    def _gates(self, job: dict[str, Any]) -> dict[str, Any]:
        result = dict(self.jobs.get_row(job["job_id"]).result or {})
        gates = self.gates(
            job["challenger_model_id"],
            job["model_id"],
            result["champion"]["metrics"],
            result["challenger"]["metrics"],
        )
        decision = decided_by(gates)
        promote = bool(job.get("auto_promote")) and decision == ALL_PASSED
        self._record_step(
            job["job_id"],
            "gates",
            {"decided_by": decision, "auto_promote": bool(job.get("auto_promote"))},
            gates=[g.to_dict() for g in gates],
            decided_by=decision,
            promoted=False,
        )
        return {"promote": promote}

    def _promote(self, job: dict[str, Any]) -> dict[str, Any]:
        promotion = self.promote_challenger(
            job["challenger_model_id"],
            f"retraining job {job['job_id']}: {job.get('reason')}",
            job.get("actor") or ACTOR,
        )
        self._record_step(
            job["job_id"], "promote", promotion, promoted=True, promotion=promotion
        )
        return {}

    # -- helpers --------------------------------------------------------------------

    def _champion(self, job: dict[str, Any]) -> tuple[MLModel, FeatureSet]:
        with self.uow() as tx:
            model = get_model(tx.models, job["model_id"])
            fs = (
                tx.feature_sets.get(model.feature_set_id)
                if model.feature_set_id is not None
                else None
            )
        if fs is None:
            raise Conflict(f"the champion {model.id}'s feature set is gone")
        return model, fs

    def _read(self, path: str) -> pd.DataFrame:
        import pyarrow.parquet as pq

        with local_file(self.blobs, path) as local:
            frame: pd.DataFrame = pq.read_table(local).to_pandas()
        return frame

    def _store_dataset(
        self, name: str, description: str, frame: pd.DataFrame
    ) -> dict[str, Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from shared.services.upload_spool import Upload

        with tempfile.TemporaryDirectory(prefix="sh-retraining-") as tmp:
            path = Path(tmp) / "data.parquet"
            table = pa.Table.from_pandas(frame, preserve_index=False)
            pq.write_table(table, path, compression="zstd")
            upload = Upload(path, "retraining.parquet", None, path.stat().st_size)
            return self.datasets.create(name, description, upload)

    def _update(
        self, job_id: str, progress: float | None, message: str | None, **result: Any
    ) -> None:
        """Merge ``result`` into the job's result (steps run one at a time)."""
        merged = dict(self.jobs.get_row(job_id).result or {})
        merged.update(result)
        values: dict[str, Any] = {"result": merged}
        if progress is not None:
            values["progress"] = progress
        if message is not None:
            values["message"] = message
        if self.jobs.record(job_id, **values) == "CANCELLED":
            raise JobCancelled(job_id)

    def _record_step(
        self, job_id: str, step: str, summary: dict[str, Any], **result: Any
    ) -> None:
        steps = dict((self.jobs.get_row(job_id).result or {}).get("steps") or {})
        steps[step] = summary
        self._update(job_id, None, None, steps=steps, **result)
