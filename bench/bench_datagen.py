"""Benchmark: 1M transactions (50k users, 5k merchants, 90 days).

Tracks the generator's promise of "well under 60 s, < 3 GB" on a small box.
Run from the project root: ``.venv/bin/python bench/bench_datagen.py``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.datagen import GeneratorConfig, generate_transactions  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--merchants", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    config = GeneratorConfig(
        n_rows=args.rows,
        n_users=args.users,
        n_merchants=args.merchants,
        days=args.days,
        seed=args.seed,
    )
    began = time.perf_counter()
    frame = generate_transactions(config)
    seconds = time.perf_counter() - began
    # ru_maxrss is KiB on Linux.
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"rows         {len(frame):,}")
    print(f"wall_seconds {seconds:.2f}")
    print(f"peak_rss_mib {peak_mib:.0f}")
    print(f"fraud_rate   {frame['is_fraud'].mean():.4%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
