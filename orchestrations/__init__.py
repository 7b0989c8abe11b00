"""Durable Functions orchestrators and activities, grouped in blueprints that
function_app.py registers. Activities are idempotent and pass ids and blob paths only."""

from __future__ import annotations

import azure.durable_functions as df

from orchestrations import (
    backtest,
    bias,
    drift,
    features,
    jobs,
    promotion,
    retraining,
    training,
)


def blueprints() -> list[df.Blueprint]:
    return [
        jobs.bp,
        features.bp,
        training.bp,
        promotion.bp,
        backtest.bp,
        drift.bp,
        bias.bp,
        retraining.bp,
    ]
