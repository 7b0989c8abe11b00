"""Detection quality out of time: prints figures, asserts nothing.

Computes batch features with the default ``FeatureConfig`` on (a) the project's generated
data or (b) an external card dataset (``--csv``), trains the default algorithm with its
default hyperparameters on the earlier period, leaves a gap equal to the label delay, and
scores the last period once. Prints AUC ROC, average precision, precision@k per day (the
k highest-scored transactions of each test day) and card precision@k per day (the k cards
with the highest score of the day, the share of them with a fraud that day), each
averaged over the test days.

The split: the test period is the last ``--test-fraction`` of the time span (cut at a day
boundary) unless ``--test-start``/``--test-end`` are given; training ends one label delay
before the test starts and starts at ``--train-start`` (default: the first transaction).
``--drop-known-cards`` scores, on each test day, only cards with no fraud known by then
(a fraud at s with known_since <= s < day - delay), the protocol of the Fraud Detection
Handbook's baselines (Le Borgne et al., chapter 3.4). ``--known-since`` (default: the
training start) sets where known frauds start counting, so the handbook's test set (known
frauds from its one-week training start, 2018-07-25: 58,264 transactions) can be scored
by a model trained on a longer window. With ``--drop-known-cards`` it also prints the
handbook's own card precision@k, which on each test day also leaves out the fraud cards
already caught in an earlier day's top k (``card_precision_top_k`` of its shared
functions).

    .venv/bin/python bench/bench_detection_quality.py [--rows 400000] [--card-columns]
    .venv/bin/python bench/bench_detection_quality.py --csv data.csv \\
        [--map user_id=CUSTOMER_ID ...] [--train-start 2018-07-04 --train-end 2018-07-31 \\
        --test-start 2018-08-08 --test-end 2018-08-14 --drop-known-cards \\
        --known-since 2018-07-25]

Without ``--map``, a CSV is read with the Handbook's column names (TRANSACTION_ID,
TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH, so another checkout can be measured

from ml.features import FeatureConfig, compute_features  # noqa: E402
from ml.features.config import apply_column_mapping, parse_duration  # noqa: E402
from ml.training.pipeline import FitPlan, fit_and_evaluate  # noqa: E402
from ml.training.splits import SplitPlan, make_splits, time_split  # noqa: E402

HANDBOOK_MAPPING = {
    "transaction_id": "TRANSACTION_ID",
    "timestamp": "TX_DATETIME",
    "user_id": "CUSTOMER_ID",
    "merchant_id": "TERMINAL_ID",
    "amount": "TX_AMOUNT",
    "is_fraud": "TX_FRAUD",
}
CARD_COLUMNS = (
    "transaction_id",
    "timestamp",
    "user_id",
    "merchant_id",
    "amount",
    "is_fraud",
)
DAY_NS = 86_400 * 10**9


def load(args: argparse.Namespace) -> tuple[pd.DataFrame, dict[str, str]]:
    if args.csv is None:
        from ml.datagen import GeneratorConfig, generate_transactions

        config = GeneratorConfig(
            n_rows=args.rows,
            n_users=args.users,
            n_merchants=args.merchants,
            days=args.days,
            seed=args.seed,
        )
        df = generate_transactions(config)
        if args.card_columns:
            df = df[list(CARD_COLUMNS)]
        return df, {}
    mapping = dict(HANDBOOK_MAPPING)
    for item in args.map or []:
        role, _, column = item.partition("=")
        mapping[role] = column
    df = pd.read_csv(args.csv, usecols=sorted(set(mapping.values())))
    return df, mapping


def to_ns(value: str) -> int:
    moment = datetime.fromisoformat(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (
        (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    )


def from_ns(value: int) -> datetime:
    """The instant rounded up to the microsecond (a datetime's precision), so an
    exclusive end one nanosecond after the last row still holds that row."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=-(-value // 1000))


def split(
    ts: np.ndarray, gap_ns: int, args: argparse.Namespace
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(train rows, test rows, train start ns, test start ns), by ``time_split``."""
    first, last = int(ts.min()), int(ts.max())
    if args.test_start:
        test_start = to_ns(args.test_start)
    else:
        cut = last - int(args.test_fraction * (last - first))
        test_start = -(-cut // DAY_NS) * DAY_NS  # the next midnight
    test_end = to_ns(args.test_end) + DAY_NS if args.test_end else last + 1
    train_end = (
        to_ns(args.train_end) + DAY_NS if args.train_end else test_start - gap_ns
    )
    train_start = to_ns(args.train_start) if args.train_start else first
    as_dt = [from_ns(v) for v in (train_start, train_end, test_start, test_end)]
    gap = timedelta(microseconds=gap_ns // 1000)
    train, test = time_split(ts, as_dt[0], as_dt[1], gap, as_dt[2], as_dt[3])
    return train, test, train_start, test_start


def daily_precisions(
    day: np.ndarray, user: np.ndarray, y: np.ndarray, score: np.ndarray, k: int
) -> tuple[float, float]:
    """(precision@k per day, card precision@k per day), averaged over the days."""
    frame = pd.DataFrame({"day": day, "user": user, "y": y, "score": score})
    tx_prec, card_prec = [], []
    for _, rows in frame.groupby("day", sort=True):
        top = rows.nlargest(k, "score")
        tx_prec.append(float(top["y"].sum()) / k)
        cards = rows.groupby("user").agg(score=("score", "max"), y=("y", "max"))
        card_prec.append(float(cards.nlargest(k, "score")["y"].sum()) / k)
    return float(np.mean(tx_prec)), float(np.mean(card_prec))


def handbook_card_precision(
    day: np.ndarray, user: np.ndarray, y: np.ndarray, score: np.ndarray, k: int
) -> float:
    """Card precision@k per day as the handbook computes it: a fraud card caught in
    one day's top k is left out of the following days."""
    frame = pd.DataFrame({"day": day, "user": user, "y": y, "score": score})
    caught: set[object] = set()
    card_prec = []
    for _, rows in frame.groupby("day", sort=True):
        rows = rows[~rows["user"].isin(caught)]
        cards = rows.groupby("user").agg(score=("score", "max"), y=("y", "max"))
        top = cards.nlargest(k, "score")
        hits = top.index[top["y"] == 1.0]
        card_prec.append(float(hits.size) / k)
        caught.update(hits)
    return float(np.mean(card_prec))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--merchants", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--card-columns",
        action="store_true",
        help="generated data with card data's columns only (no device, location, "
        "category, payment method)",
    )
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--map", action="append", metavar="ROLE=COLUMN")
    parser.add_argument("--algorithm", default="xgboost")
    parser.add_argument(
        "--params",
        help="hyperparameters as JSON (default: none given, so the job's own search "
        "runs, as a training request without hyperparameters does)",
    )
    parser.add_argument("--search-seconds", type=float, default=300.0)
    parser.add_argument(
        "--model-seed", type=int, default=42, help="the training job's seed"
    )
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--train-start")
    parser.add_argument("--train-end")
    parser.add_argument("--test-start")
    parser.add_argument("--test-end")
    parser.add_argument("--drop-known-cards", action="store_true")
    parser.add_argument(
        "--known-since",
        help="with --drop-known-cards, count known frauds from this date (default: "
        "the training start; the handbook's protocol: 2018-07-25)",
    )
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()

    from sklearn.metrics import average_precision_score, roc_auc_score

    t0 = time.perf_counter()
    df, mapping = load(args)
    canonical = apply_column_mapping(df, mapping)
    config = FeatureConfig()
    t1 = time.perf_counter()
    result = compute_features(df, config, column_mapping=mapping)
    t2 = time.perf_counter()
    ts = (
        pd.to_datetime(canonical["timestamp"], utc=True, format="mixed")
        .dt.as_unit("ns")
        .to_numpy(dtype="datetime64[ns]")
        .view(np.int64)
    )
    y = pd.to_numeric(canonical["is_fraud"]).to_numpy(dtype=np.float64)
    users = canonical["user_id"].astype("string").to_numpy(dtype=object)
    gap_ns = parse_duration(config.label_delay)
    train, test, train_start, test_start = split(ts, gap_ns, args)
    X = np.ascontiguousarray(
        result.frame[result.feature_names].to_numpy(dtype=np.float32)
    )
    params = json.loads(args.params) if args.params else None
    # the training job's own steps: validation carved from the training period after
    # the label delay, search or early stopping, calibration and threshold on it
    windows = (
        from_ns(int(ts[train].min())),
        from_ns(int(ts[train].max()) + 1),
        from_ns(test_start),
        from_ns(int(ts[test].max()) + 1),
    )
    plan = SplitPlan(kind="time", gap=config.label_delay, windows=windows)
    splits = make_splits(plan, ts, y)
    outcome = fit_and_evaluate(
        FitPlan(
            args.algorithm,
            params,
            search_seconds=args.search_seconds,
            seed=args.model_seed,
        ),
        X,
        y,
        splits,
        result.feature_names,
    )
    t3 = time.perf_counter()
    test, score = splits.test, outcome.test_scores
    day = ts[test] // DAY_NS
    keep = np.ones(test.size, dtype=bool)
    if args.drop_known_cards:
        known_since = to_ns(args.known_since) if args.known_since else train_start
        fraud = (y == 1.0) & (ts >= known_since)
        first = pd.Series(ts[fraud]).groupby(users[fraud]).min()
        known = pd.Series(users[test]).map(first).to_numpy(dtype=np.float64)
        keep = ~(known < (day * DAY_NS - gap_ns))
    y_test, s_test = y[test][keep], score[keep]
    prec, card_prec = daily_precisions(
        day[keep], users[test][keep], y_test, s_test, args.k
    )
    hb_card_prec = (
        handbook_card_precision(day[keep], users[test][keep], y_test, s_test, args.k)
        if args.drop_known_cards
        else None
    )
    source = str(args.csv) if args.csv else f"datagen {args.rows:,} rows"
    print(f"data: {source}; {len(df):,} transactions, fraud rate {np.nanmean(y):.4f}")
    print(
        f"features: {len(result.feature_names)} computed, {len(result.dropped)} dropped "
        f"(no column); {t2 - t1:.1f} s"
    )
    print(
        f"split: train {train.size:,} rows, gap {config.label_delay}, test "
        f"{int(keep.sum()):,} rows over {np.unique(day[keep]).size} days"
        + (
            f" (cards with a fraud known since "
            f"{args.known_since or 'the training start'} dropped)"
            if args.drop_known_cards
            else ""
        )
    )
    given = (
        f"hyperparameters {params}"
        if params is not None
        else f"the job's search ({len(outcome.metrics.get('search', []))} trials)"
    )
    print(f"model: {args.algorithm} (seed {args.model_seed}), {given}; {t3 - t2:.1f} s")
    print(f"AUC ROC                       {roc_auc_score(y_test, s_test):.3f}")
    print(
        f"average precision             {average_precision_score(y_test, s_test):.3f}"
    )
    print(f"precision@{args.k} per day          {prec:.3f}")
    print(f"card precision@{args.k} per day     {card_prec:.3f}")
    if hb_card_prec is not None:
        print(f"card precision@{args.k}, handbook's {hb_card_prec:.3f}")
    print(
        f"test transactions scored      {y_test.size:,} ({int(y_test.sum()):,} frauds)"
    )
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
