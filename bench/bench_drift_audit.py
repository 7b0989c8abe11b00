"""A whole drift audit job on SQLite and on PostgreSQL: one model's ``--rows`` logged
predictions of ``--features`` features, mirrored by the feature log but for the last
``--tail-minutes`` (read from the table, as between two exports), audited end to end
by ``DriftAudits.run_job`` (read the window, every statistic, store the result JSON, the
audit row and its drift_metrics rows); the HTML report is timed apart.

The predictions go straight through the prediction log's adapter (as
bench_feature_log.py logs them: N(0, 1) features, 30 % labelled), then one export; the
baseline is built from a 200,000-row training matrix in which the first fifth of the
features sit 0.3 higher, so those drift. The databases take turns, ``--runs`` each.

    .venv/bin/python bench/bench_drift_audit.py [--rows 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_feature_log import (  # noqa: E402
    RATE,
    T0,
    _label,
    _log,
    _summary,
    _url,
)

TRAIN_ROWS = 200_000


class Side:
    """One database with its logged model, mirrored, and the container auditing it."""

    def __init__(self, kind: str, url: str, tmp: Path, args: argparse.Namespace):
        from shared.adapters.blobs.local import LocalBlobStore
        from shared.config import Settings
        from shared.container import Container
        from shared.db.models import MLModel
        from shared.db.session import Database

        self.kind = kind
        self.db = Database(url)
        self.model_id = uuid.uuid4()
        self.names = [f"feature_{j:02d}" for j in range(args.features)]
        with self.db.session(write=True) as s:
            s.add(
                MLModel(
                    id=self.model_id,
                    name=f"bench-{kind}",
                    version="1",
                    algorithm="xgboost",
                    storage_path=f"models/{self.model_id}/",
                    status="PRODUCTION",
                    details={"features": self.names, "threshold": 0.5},
                    metrics={"precision": 0.9, "recall": 0.8, "auc_roc": 0.95},
                )
            )
        self.log_s = _log(self.db, self.model_id, args)
        _label(self.db, self.model_id, args)
        settings = Settings(data_dir=tmp / kind, log_json=False)
        self.ctx = Container(
            settings=settings, db=self.db, blobs=LocalBlobStore(tmp / kind / "blobs")
        )
        self.end = T0 + timedelta(seconds=args.rows / RATE + 1)
        began = time.perf_counter()
        # the export leaves the last --tail-minutes to be read from the table
        lag = timedelta(minutes=2)  # the feature log's default
        cut = self.end - timedelta(minutes=args.tail_minutes)
        self.exported = self.ctx.feature_log.export(cut + lag)
        self.export_s = time.perf_counter() - began
        rng = np.random.default_rng(2)
        train = rng.normal(size=(TRAIN_ROWS, args.features)).astype(np.float32)
        train[:, : args.features // 5] += 0.3
        self.ctx.drift_baselines.store(self.model_id, train, self.names)

    def audit(self) -> dict[str, Any]:
        from shared.services.monitoring_commands import AuditCommand

        audits = self.ctx.drift_audits
        accepted = audits.request(
            AuditCommand(str(self.model_id), window_start=T0, window_end=self.end)
        )
        began = time.perf_counter()
        result = audits.run_job(accepted.job_id)
        total = time.perf_counter() - began
        assert result["status"] == "COMPLETED", result
        return {**result["seconds"], "total": total, "rows": result["rows"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--labelled", type=float, default=0.3)
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    parser.add_argument(
        "--tail-minutes",
        type=float,
        default=4.0,
        help="the newest minutes not exported yet (at most the export's interval, "
        "2 minutes by default, plus its 2-minute lag)",
    )
    args = parser.parse_args()
    kinds = [args.only] if args.only else ["sqlite", "postgresql"]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sides = []
        for kind in kinds:
            url = stack.enter_context(_url(kind, tmp))
            side = Side(kind, url, tmp, args)
            print(
                f"{kind}: logged {args.rows} rows x {args.features} features in "
                f"{side.log_s:.1f} s; exported {side.exported} rows in "
                f"{side.export_s:.1f} s",
                flush=True,
            )
            sides.append(side)
        results: dict[str, dict[str, list[float]]] = {s.kind: {} for s in sides}
        for _ in range(args.runs):
            for side in sides:  # the databases take turns
                run = side.audit()
                assert run.pop("rows") == args.rows
                run["audit (report excluded)"] = run["total"] - run["report"]
                for key, value in run.items():
                    results[side.kind].setdefault(key, []).append(value)
                print(f"{side.kind}: {run}", flush=True)
        print(f"drift audit of {args.rows} rows x {args.features} features (noisy):")
        for kind, parts in results.items():
            for name in ("audit (report excluded)", "read", "statistics", "store"):
                print(f"  {kind:<11} {name:<24} {_summary(parts[name])}")
            print(f"  {kind:<11} {'report (apart)':<24} {_summary(parts['report'])}")
        for side in sides:
            side.db.dispose()


if __name__ == "__main__":
    main()
