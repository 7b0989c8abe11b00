"""Cold-start import benchmark: prints figures, asserts nothing.

Times ``import function_app`` (what the Functions host does to index the app at cold
start) in fresh interpreters, wall and CPU, and lists any heavy module it loaded.

    .venv/bin/python bench/bench_import.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fresh_process import run_fresh  # noqa: E402  (the project on the path first)

HEAVY = ("pandas", "sklearn", "xgboost", "lightgbm", "shap", "pyarrow", "sqlalchemy")
PROBE = f"""
import json, sys, time
t, c = time.perf_counter(), time.process_time()
import function_app
wall, cpu = time.perf_counter() - t, time.process_time() - c
loaded = [m for m in {HEAVY!r} if m in sys.modules]
print(json.dumps({{"wall_s": wall, "cpu_s": cpu, "loaded": loaded}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [run_fresh(PROBE) for _ in range(args.runs)]
    print(
        json.dumps(
            {
                "runs": args.runs,
                "wall_s": {
                    "median": round(statistics.median(r["wall_s"] for r in runs), 3),
                    "min": round(min(r["wall_s"] for r in runs), 3),
                },
                "cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs), 3),
                "heavy_modules_loaded": sorted({m for r in runs for m in r["loaded"]}),
            }
        )
    )


if __name__ == "__main__":
    main()
