"""A retraining's training rows from its sources (ml.training.data_strategy)."""

from __future__ import annotations

import pandas as pd
import pytest

from ml.training.data_strategy import (
    SAMPLE_WEIGHT,
    AssemblyPlan,
    DataStrategyError,
    assemble,
)

DAY_NS = 86_400 * 10**9


def _frame(prefix: str, start: str, days: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [f"{prefix}{i}" for i in range(days)],
            "timestamp": pd.date_range(start, periods=days, freq="D", tz="UTC"),
            "amount": 1.0,
        }
    )


NEW = _frame("n", "2026-02-01", 10)
OLD = _frame("o", "2026-01-01", 30)


def test_replace_keeps_the_new_rows_each_weighing_one() -> None:
    out = assemble(NEW, None, AssemblyPlan("replace"))
    assert list(out.frame["transaction_id"]) == list(NEW["transaction_id"])
    assert (out.frame[SAMPLE_WEIGHT] == 1.0).all()
    assert out.rows_new == 10 and out.rows_historical == 0


def test_merge_gives_each_source_its_share_of_the_weight() -> None:
    out = assemble(NEW, OLD, AssemblyPlan("merge", shares=(0.7, 0.3)))
    total = len(out.frame)
    assert total == 40
    is_new = out.frame["transaction_id"].str.startswith("n")
    assert out.frame.loc[is_new, SAMPLE_WEIGHT].sum() == pytest.approx(0.7 * total)
    assert out.frame.loc[~is_new, SAMPLE_WEIGHT].sum() == pytest.approx(0.3 * total)
    assert out.frame[SAMPLE_WEIGHT].mean() == pytest.approx(1.0)
    assert out.frame["timestamp"].is_monotonic_increasing  # oldest first


def test_merge_without_shares_weighs_every_row_one_and_drops_duplicates() -> None:
    repeated = pd.concat([OLD, NEW.iloc[:2]], ignore_index=True)
    out = assemble(NEW, repeated, AssemblyPlan("merge"))
    assert out.duplicates_dropped == 2
    assert out.frame["transaction_id"].is_unique and len(out.frame) == 40
    assert (out.frame[SAMPLE_WEIGHT] == 1.0).all()


def test_sliding_window_keeps_the_most_recent_span() -> None:
    out = assemble(NEW, OLD, AssemblyPlan("sliding_window", window_ns=15 * DAY_NS))
    assert out.end - out.start < pd.Timedelta(days=15)
    assert out.rows_new == 10 and out.rows_historical == 4
    assert out.rows_outside_window == 26


def test_a_source_outside_the_window_gives_its_share_to_the_other() -> None:
    plan = AssemblyPlan("sliding_window", shares=(0.7, 0.3), window_ns=5 * DAY_NS)
    out = assemble(NEW, OLD, plan)
    assert out.rows_historical == 0
    assert out.weight_new == pytest.approx(len(out.frame))


def test_string_timestamps_and_a_renamed_column() -> None:
    renamed = NEW.rename(columns={"timestamp": "ts"})
    renamed["ts"] = renamed["ts"].astype(str)
    out = assemble(renamed, None, AssemblyPlan("replace", timestamp_column="ts"))
    assert len(out.frame) == 10


def test_no_timestamp_is_refused() -> None:
    with pytest.raises(DataStrategyError):
        assemble(NEW.drop(columns="timestamp"), None, AssemblyPlan("replace"))
