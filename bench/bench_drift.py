"""Drift statistics benchmark: ours against Evidently's DataDriftPreset, same data, one run.

Synthetic features (default 1,000,000 live rows x 50 features: 40 numeric of several
shapes, 10 small integer codes; 1 % missing; a third of the features drifted) and a
200,000-row "training" sample for the baseline. Times, in alternation:

- ours: ``compute_drift`` over the live columns held column-major (as a columnar read
  gives them): every feature's PSI, KS (numeric), chi-square (categorical), bins,
  quantiles and statuses. Generating and writing the data is excluded.
- Evidently (with ``--evidently-python``, a venv holding evidently, numpy, pandas<3):
  a child process loads the same two matrices, then ``Report([DataDriftPreset()]).run``
  is timed on them (after a small warm-up run in that child; loading excluded).

    .venv/bin/python bench/bench_drift.py [--rows 1000000] [--features 50] \
        [--repeat 2] [--evidently-python /work/wt/evidently-venv/bin/python]

Prints JSON lines, then the medians and their ratio. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.monitoring import build_baseline, compute_drift  # noqa: E402
from ml.monitoring.report import render_report  # noqa: E402

EVIDENTLY_CHILD = r"""
import json, sys, time
import numpy as np, pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

folder, method = sys.argv[1], sys.argv[2]
meta = json.loads(open(f"{folder}/meta.json").read())
names, categorical = meta["names"], set(meta["categorical"])
definition = DataDefinition(
    numerical_columns=[n for n in names if n not in categorical],
    categorical_columns=[n for n in names if n in categorical],
)

def frame(path):
    return pd.DataFrame(np.load(path), columns=names)

reference, current = frame(f"{folder}/train.npy"), frame(f"{folder}/live.npy")
preset = lambda: DataDriftPreset(method=None if method == "default" else method)

def run(ref, cur):
    report = Report([preset()])
    result = report.run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    return result.dict()

run(reference.head(2000), current.head(2000))  # warm-up: imports, lazy set-up
start = time.perf_counter()
out = run(reference, current)
wall = time.perf_counter() - start
drifted = out["metrics"][0]["value"]
print(json.dumps({"wall_s": round(wall, 3), "drifted": drifted}))
"""


def synthetic(
    rows: int, features: int, seed: int, drift: bool
) -> tuple[npt.NDArray[np.float32], list[str], list[str]]:
    """(rows, features) float32, column-major; names; the categorical names."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows, features), np.float32, order="F")
    names, categorical = [], []
    n_categorical = max(features // 5, 1)
    for j in range(features):
        shifted = drift and j % 3 == 0
        s = 0.3 if shifted else 0.0
        if j >= features - n_categorical:
            name = f"code_{j}"
            k = 3 + j % 8
            p = np.linspace(1, 2, k)
            if shifted:
                p = p[::-1]
            out[:, j] = rng.choice(k, rows, p=p / p.sum())
            categorical.append(name)
        else:
            name = f"num_{j}"
            kind = j % 4
            if kind == 0:
                out[:, j] = rng.lognormal(3 + s, 1, rows)
            elif kind == 1:
                out[:, j] = rng.normal(s, 1, rows)
            elif kind == 2:
                out[:, j] = rng.exponential(1 + s, rows)
            else:  # a point mass at zero and a tail, as counts of recent events
                out[:, j] = rng.poisson(0.5 + s, rows) * rng.gamma(2, 1 + s, rows)
        names.append(name)
        out[rng.random(rows) < 0.01, j] = np.nan
    return out, names, categorical


def _ours(baseline: Any, live: npt.NDArray[np.float32]) -> dict[str, Any]:
    start = time.perf_counter()
    result = compute_drift(baseline, live)
    wall = time.perf_counter() - start
    statuses = [f.status for f in result.features]
    return {
        "wall_s": round(wall, 3),
        "status": result.status,
        "critical": statuses.count("CRITICAL"),
        "warning": statuses.count("WARNING"),
    }


def _evidently(python: str, folder: str, method: str) -> dict[str, Any]:
    child = subprocess.run(
        [python, "-c", EVIDENTLY_CHILD, folder, method],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--train-rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--evidently-python", default=None)
    parser.add_argument(
        "--evidently-method",
        default="default",
        help="DataDriftPreset(method=...): default (its per-type choice), psi, ks ...",
    )
    args = parser.parse_args()

    train, names, categorical = synthetic(args.train_rows, args.features, 1, False)
    live, _, _ = synthetic(args.rows, args.features, 2, True)
    start = time.perf_counter()
    baseline = build_baseline(train, names, categorical=categorical)
    built = time.perf_counter() - start
    size = len(json.dumps(baseline.to_dict()))
    print(
        json.dumps(
            {
                "baseline_s": round(built, 3),
                "train_rows": args.train_rows,
                "baseline_json_mb": round(size / 1e6, 2),
            }
        )
    )
    start = time.perf_counter()
    html = render_report(compute_drift(baseline, live))
    print(
        json.dumps(
            {
                "drift_and_report_s": round(time.perf_counter() - start, 3),
                "html_kb": len(html) // 1000,
            }
        )
    )

    ours: list[float] = []
    theirs: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        if args.evidently_python:
            np.save(f"{folder}/train.npy", np.ascontiguousarray(train))
            np.save(f"{folder}/live.npy", np.ascontiguousarray(live))
            meta = {"names": names, "categorical": categorical}
            Path(folder, "meta.json").write_text(json.dumps(meta))
        for i in range(args.repeat):
            figure = _ours(baseline, live)
            ours.append(figure["wall_s"])
            print(json.dumps({"run": i, "tool": "ours", "rows": args.rows, **figure}))
            if args.evidently_python:
                figure = _evidently(
                    args.evidently_python, folder, args.evidently_method
                )
                theirs.append(figure["wall_s"])
                print(json.dumps({"run": i, "tool": "evidently", **figure}))
    summary: dict[str, Any] = {
        "rows": args.rows,
        "features": args.features,
        "ours_median_s": round(statistics.median(ours), 3),
    }
    if theirs:
        summary["evidently_median_s"] = round(statistics.median(theirs), 3)
        summary["evidently_method"] = args.evidently_method
        summary["ratio"] = round(statistics.median(theirs) / statistics.median(ours), 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
