"""Write a synthetic transaction data set to CSV or Parquet.

Example (from the project root)::

    .venv/bin/python scripts/generate_test_data.py --rows 100000 --out /tmp/tx.parquet
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from ml.datagen import (  # noqa: E402
    DriftConfig,
    GeneratorConfig,
    generate_transactions,
)

_DEFAULTS = GeneratorConfig()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Generate deterministic synthetic e-commerce transactions."
    )
    parser.add_argument("--rows", type=int, default=_DEFAULTS.n_rows)
    parser.add_argument("--users", type=int, default=_DEFAULTS.n_users)
    parser.add_argument("--merchants", type=int, default=_DEFAULTS.n_merchants)
    parser.add_argument("--days", type=int, default=_DEFAULTS.days)
    parser.add_argument("--start", default=_DEFAULTS.start, help="ISO date (UTC)")
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed)
    parser.add_argument("--fraud-rate", type=float, default=_DEFAULTS.target_fraud_rate)
    drift = parser.add_argument_group("drift")
    drift.add_argument("--drift-start-day", type=int, default=None)
    drift.add_argument(
        "--amount-shift",
        type=float,
        default=1.0,
        help="multiply amounts from --drift-start-day on",
    )
    drift.add_argument(
        "--device-mix-shift",
        type=float,
        default=0.0,
        help="0..1 share of traffic moved to a new device mix from the start day",
    )
    drift.add_argument(
        "--new-pattern-day",
        type=int,
        default=None,
        help="day from which a new fraud pattern appears",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output path, .csv or .parquet"
    )
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> GeneratorConfig:
    return GeneratorConfig(
        n_rows=args.rows,
        n_users=args.users,
        n_merchants=args.merchants,
        days=args.days,
        start=args.start,
        seed=args.seed,
        target_fraud_rate=args.fraud_rate,
        drift=DriftConfig(
            amount_shift_factor=args.amount_shift,
            new_fraud_pattern_day=args.new_pattern_day,
            device_mix_shift=args.device_mix_shift,
            drift_start_day=args.drift_start_day,
        ),
    )


def write(frame: pd.DataFrame, path: Path) -> None:
    """Write by suffix; refusing other suffixes avoids silent format guesses."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise SystemExit(f"--out must end in .csv or .parquet, got {path}")


def summary(frame: pd.DataFrame, seconds: float, path: Path) -> str:
    rates = frame["fraud_type"].value_counts().sort_index() / len(frame)
    lines = [
        f"rows        {len(frame):,}",
        f"fraud rate  {frame['is_fraud'].mean():.3%}",
    ]
    lines += [f"  {name:<22}{rate:.3%}" for name, rate in rates.items()]
    lines += [
        f"time range  {frame['timestamp'].min()} .. {frame['timestamp'].max()}",
        f"seconds     {seconds:.2f}",
        f"written to  {path}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out.suffix.lower() not in {".csv", ".parquet"}:
        raise SystemExit(f"--out must end in .csv or .parquet, got {args.out}")
    try:
        config = config_from_args(args)
        began = time.perf_counter()
        frame = generate_transactions(config)
    except ValueError as exc:
        raise SystemExit(f"invalid configuration: {exc}") from exc
    seconds = time.perf_counter() - began
    write(frame, args.out)
    print(summary(frame, seconds, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
