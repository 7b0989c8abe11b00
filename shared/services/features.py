"""Feature sets: validate a compute request, run it as a job, store and describe results.

The request is checked against the dataset's stored schema before any job starts, so
that every mistake visible at request time is a 4xx; problems that only the data shows
(unparseable timestamps, negative amounts) end the job FAILED with the reason. A feature
set row is written only together with its Parquet blob, so a failed job leaves nothing.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.adapters.blobs.local_copy import local_file
from shared.db.models import FeatureSet
from shared.errors import NotFound, ValidationFailed, field_error
from shared.ports import Duplicate
from shared.services.datasets import DatasetService
from shared.services.feature_commands import ComputeCommand, JobAccepted
from shared.services.jobs import JobCancelled, JobService
from shared.services.pagination import Page, check_page
from shared.timefmt import iso

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.ports import BlobStore, JobLauncher, Transactions

log = logging.getLogger(__name__)

JOB_KIND = "features"
ORCHESTRATOR = "features_orchestrator"
# Columns carried next to the features: what training (label, time-based splits) and
# bias audits (protected attributes) need from the source rows.
CARRIED_ROLES = ("timestamp", "is_fraud", "user_id")
DEFAULT_CARRIED_COLUMNS = ("gender", "age_group")
_SECONDS_PER_ROW = 20e-6  # measured by bench/bench_features.py, rounded up


def feature_set_path(feature_set_id: uuid.UUID | str) -> str:
    return f"features/{feature_set_id}/data.parquet"


def feature_set_to_dict(fs: FeatureSet, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(fs.id),
        "name": fs.name,
        "dataset_id": str(fs.dataset_id) if fs.dataset_id else None,
        "dataset_version": fs.dataset_version,
        "status": fs.status,
        "feature_count": fs.feature_count,
        "row_count": fs.row_count,
        "storage_path": fs.storage_path,
        "job_id": str(fs.job_id) if fs.job_id else None,
        "created_at": iso(fs.created_at),
    }
    if full:
        out["feature_config"] = fs.feature_config
        out["features"] = fs.features
        out["statistics"] = fs.statistics
    return out


def _parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"{what} {value!r} not found.") from None


class FeatureService:
    def __init__(
        self,
        uow: Transactions,
        blobs: BlobStore,
        settings: Settings,
        jobs: JobService,
        datasets: DatasetService,
        launcher: JobLauncher,
    ) -> None:
        self.uow = uow
        self.blobs = blobs
        self.settings = settings
        self.jobs = jobs
        self.datasets = datasets
        self.launcher = launcher

    def get_job(self, job_id: str) -> dict[str, Any]:
        """A feature job's status, with the feature set it made once done."""
        job = self.jobs.get(job_id, kind=JOB_KIND)
        job["feature_set_id"] = (job.get("result") or {}).get("feature_set_id")
        return job

    # -- request --------------------------------------------------------------------

    def request_compute(self, cmd: ComputeCommand) -> JobAccepted:
        """Validate, create the job, hand it to the launcher; the 202 body."""
        accepted = self.record_compute(cmd)
        self.launcher.launch(ORCHESTRATOR, accepted.job_id, {"job_id": accepted.job_id})
        return accepted

    def record_compute(
        self, cmd: ComputeCommand, job_id: uuid.UUID | None = None
    ) -> JobAccepted:
        """Validate and create the job without launching it: for a workflow that runs
        the job's activity (``run_job``) as one of its own steps."""
        from ml.features import GROUPS, ROLES, FeatureConfig, FeatureInputError
        from ml.features.config import REQUIRED_ROLES

        dataset = self.datasets.version(cmd.dataset_id, cmd.dataset_version)
        columns = [c["name"] for c in dataset.schema["columns"]]
        config_body = dict(cmd.config)
        config_body["groups"] = list(cmd.feature_groups or GROUPS)
        try:
            config = FeatureConfig.from_request(config_body)
        except FeatureInputError as exc:
            field = "feature_groups" if exc.field == "groups" else f"config.{exc.field}"
            raise ValidationFailed(
                exc.message, field_error(field, exc.message)
            ) from None
        mapping = dict(cmd.column_mapping)
        details = []
        for role, source in mapping.items():
            if role not in ROLES:
                details.append(
                    {
                        "field": f"column_mapping.{role}",
                        "message": f"unknown role; known: {list(ROLES)}",
                    }
                )
            elif source not in columns:
                details.append(
                    {
                        "field": f"column_mapping.{role}",
                        "message": f"column {source!r} is not in the dataset",
                    }
                )
        for role in REQUIRED_ROLES:
            if role not in mapping and role not in columns:
                details.append(
                    {
                        "field": f"column_mapping.{role}",
                        "message": f"required: the dataset has no {role!r} column; "
                        f"map one of {columns}",
                    }
                )
        if details:
            raise ValidationFailed(
                "The dataset cannot be mapped onto the feature roles.", details
            )
        carried = cmd.carry_columns
        if carried is None:
            carried = tuple(c for c in DEFAULT_CARRIED_COLUMNS if c in columns)
        missing = [c for c in carried if c not in columns]
        if missing:
            raise ValidationFailed(
                f"carry_columns not in the dataset: {missing}",
                field_error("carry_columns", "unknown column"),
            )
        job_id = job_id or uuid.uuid4()
        payload = {
            "job_id": str(job_id),
            "feature_set_id": str(uuid.uuid4()),
            "dataset_id": str(dataset.dataset_id),
            "dataset_version": dataset.version,
            "dataset_path": dataset.storage_path,
            "output_name": cmd.output_name or f"features_{dataset.version}",
            "config": config.to_dict(),
            "column_mapping": mapping,
            "carry_columns": list(carried),
        }
        self.jobs.create(JOB_KIND, payload, job_id)
        return JobAccepted(
            job_id=str(job_id),
            status="PENDING",
            estimated_time_seconds=round(2 + dataset.row_count * _SECONDS_PER_ROW),
        )

    # -- job ------------------------------------------------------------------------

    def run_job(self, job_id: str) -> dict[str, Any]:
        """The activity body: idempotent, a re-run finds the finished set and stops."""
        from ml.features import FeatureInputError

        try:
            payload = self.jobs.start(job_id, "loading dataset")
        except JobCancelled:
            return {"status": "CANCELLED"}
        fs_id = uuid.UUID(payload["feature_set_id"])
        with self.uow() as tx:
            done = tx.feature_sets.get(fs_id)
            if done is not None:
                result = self._result(done)
        if done is not None:
            self.jobs.complete(job_id, result)
            return {"status": "COMPLETED", **result}
        try:
            return self._compute(job_id, fs_id, payload)
        except FeatureInputError as exc:
            reason = f"{exc.message} (field: {exc.field})" if exc.field else exc.message
            self.jobs.fail(job_id, reason)
            return {"status": "FAILED", "error": reason}
        except JobCancelled:
            return {"status": "CANCELLED"}

    def _compute(
        self, job_id: str, fs_id: uuid.UUID, payload: dict[str, Any]
    ) -> dict[str, Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ml.features import FeatureConfig, compute_features, feature_stats
        from ml.features.config import apply_column_mapping

        mapping = payload["column_mapping"]
        carry = payload["carry_columns"]
        with local_file(self.blobs, payload["dataset_path"]) as path:
            table = pq.read_table(path)
        df = table.to_pandas()
        del table
        self.jobs.progress(job_id, 0.15, f"computing features on {len(df):,} rows")
        config = FeatureConfig.from_dict(payload["config"])
        result = compute_features(df, config, column_mapping=mapping)
        self.jobs.progress(job_id, 0.7, "computing feature statistics")
        canonical = apply_column_mapping(df, mapping)
        frame = result.frame
        for role in CARRIED_ROLES:
            if role in canonical.columns and role not in frame.columns:
                frame[role] = canonical[role].to_numpy()
        for column in carry:
            if column not in frame.columns:
                frame[column] = df[column].to_numpy()
        del df, canonical
        stats = feature_stats(frame, result.specs)
        self.jobs.progress(job_id, 0.85, "writing the feature set")
        path_in_store = feature_set_path(fs_id)
        with tempfile.TemporaryDirectory(prefix="sh-features-") as tmp:
            out = Path(tmp) / "data.parquet"
            pq.write_table(
                pa.Table.from_pandas(frame, preserve_index=False),
                out,
                compression="zstd",
            )
            self.blobs.upload_file(path_in_store, out)
        features = [
            {
                "name": spec.name,
                "dtype": spec.dtype,
                "group": spec.group,
                "description": spec.description,
                "requires": list(spec.requires),
            }
            for spec in result.specs
        ]
        label_summary = None
        if "is_fraud" in frame.columns:  # validated 0/1/empty by ml.features
            labels = frame["is_fraud"]
            label_summary = {
                "positives": int((labels == 1).sum()),
                "negatives": int((labels == 0).sum()),
                "unlabelled": int(labels.isna().sum()),
            }
        try:
            with self.uow() as tx:
                fs = FeatureSet(
                    id=fs_id,
                    dataset_id=uuid.UUID(payload["dataset_id"]),
                    dataset_version=payload["dataset_version"],
                    name=payload["output_name"],
                    feature_config={
                        **payload["config"],
                        "column_mapping": mapping,
                        "available_roles": list(result.available_roles),
                        "dropped": result.dropped,
                        "carried_columns": [
                            c for c in frame.columns if c not in result.feature_names
                        ],
                        "label_summary": label_summary,
                        "label_column": "is_fraud"
                        if "is_fraud" in frame.columns
                        else None,
                        "timestamp_column": "timestamp",
                    },
                    features=features,
                    statistics=stats,
                    storage_path=path_in_store,
                    feature_count=len(features),
                    row_count=len(frame),
                    status="READY",
                    job_id=uuid.UUID(job_id),
                )
                tx.feature_sets.add(fs)
                summary = self._result(fs)
        except Duplicate:
            # an earlier run of this activity (a retry, a resumed orchestration)
            # registered the set first: it stands, with the blob both runs wrote
            with self.uow() as tx:
                winner = tx.feature_sets.get(fs_id)
                if winner is None:
                    raise
                summary = self._result(winner)
        except BaseException:
            self.blobs.delete_prefix(f"features/{fs_id}/")
            raise
        self.jobs.complete(job_id, summary)
        return {"status": "COMPLETED", **summary}

    @staticmethod
    def _result(fs: FeatureSet) -> dict[str, Any]:
        return {
            "feature_set_id": str(fs.id),
            "row_count": fs.row_count,
            "feature_count": fs.feature_count,
        }

    # -- reads ----------------------------------------------------------------------

    def list_sets(
        self, page: int, page_size: int, dataset_id: str | None = None
    ) -> Page[dict[str, Any]]:
        dataset = _parse_uuid(dataset_id, "Dataset") if dataset_id else None
        check_page(page, page_size)
        with self.uow() as tx:
            result = tx.feature_sets.page(page, page_size, dataset)
            items = [feature_set_to_dict(fs, full=False) for fs in result.items]
        return Page(items, result.page, result.page_size, result.total)

    def get_row(self, feature_set_id: str) -> FeatureSet:
        with self.uow() as tx:
            fs = tx.feature_sets.get(_parse_uuid(feature_set_id, "Feature set"))
            if fs is None:
                raise NotFound(f"Feature set {feature_set_id} not found.")
            return fs

    def get_set(self, feature_set_id: str) -> dict[str, Any]:
        return feature_set_to_dict(self.get_row(feature_set_id))

    def preview(self, feature_set_id: str, rows: int) -> dict[str, Any]:
        from shared.services.tabular import read_head

        limit = self.settings.preview_max_rows
        if not 1 <= rows <= limit:
            raise ValidationFailed(
                f"rows must be between 1 and {limit}.",
                field_error("rows", f"must be between 1 and {limit}"),
            )
        fs = self.get_row(feature_set_id)
        if not fs.storage_path:
            raise NotFound(f"Feature set {feature_set_id} has no data yet.")
        with local_file(self.blobs, fs.storage_path) as path:
            data = read_head(path, rows)
        return {
            "feature_set_id": str(fs.id),
            "columns": list(data[0]) if data else [],
            "rows": data,
            "returned": len(data),
            "total_rows": fs.row_count,
        }
