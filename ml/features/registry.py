"""The feature catalogue: one `FeatureSpec` per feature, in output column order.

Batch and online both select features through `select_features`, so a model trained
on a feature set is served exactly the same columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ml.features.config import FeatureConfig

_T = ("user_id", "amount", "timestamp")


@dataclass(frozen=True)
class FeatureSpec:
    """A feature's name, output dtype, one-line meaning, group and input roles."""

    name: str
    dtype: str  # "float64" | "int64" | "int8" (flags and small categoricals)
    description: str
    group: str
    requires: tuple[str, ...] = _T

    @property
    def is_categorical(self) -> bool:
        return self.dtype == "int8"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "description": self.description,
            "group": self.group,
            "requires": list(self.requires),
        }


def _transaction() -> list[FeatureSpec]:
    g = "transaction"
    return [
        FeatureSpec("amount", "float64", "Transaction amount.", g),
        FeatureSpec("log_amount", "float64", "log(1 + amount).", g),
        FeatureSpec(
            "user_mean_amount",
            "float64",
            "Mean amount of the user's earlier transactions (0 when none).",
            g,
        ),
        FeatureSpec(
            "amount_to_user_mean",
            "float64",
            "amount / user_mean_amount (1 when no history or the mean is 0).",
            g,
        ),
        FeatureSpec(
            "amount_zscore_user",
            "float64",
            "(amount - user mean) / user sample std over earlier transactions "
            "(0 when < 2 earlier or std <= 1e-6).",
            g,
        ),
        FeatureSpec(
            "is_round_amount", "int8", "1 when amount is a whole multiple of 10.", g
        ),
        FeatureSpec("amount_cents", "int64", "Cents part of the amount (0-99).", g),
        FeatureSpec("has_cents", "int8", "1 when the amount has non-zero cents.", g),
    ]


# (role, feature suffix, words) for first-use flags and distinct counts.
NEW_VALUE_ROLES: tuple[tuple[str, str, str], ...] = (
    ("device_id", "device", "device"),
    ("location", "country", "country (location)"),
    ("merchant_id", "merchant", "merchant"),
    ("payment_method", "payment_method", "payment method"),
    ("merchant_category", "merchant_category", "merchant category"),
)
DISTINCT_ROLES: tuple[tuple[str, str], ...] = (
    ("device_id", "devices"),
    ("location", "countries"),
)


def _behavioral(config: FeatureConfig) -> list[FeatureSpec]:
    g = "behavioral"
    specs = [
        FeatureSpec(
            "user_txn_count",
            "int64",
            "Number of the user's earlier transactions (ever).",
            g,
        ),
        FeatureSpec(
            "seconds_since_last_txn",
            "float64",
            "Seconds since the user's previous transaction at an earlier time "
            "(1e9 when there is none).",
            g,
        ),
    ]
    for role, suffix, words in NEW_VALUE_ROLES:
        specs.append(
            FeatureSpec(
                f"is_new_{suffix}",
                "int8",
                f"1 when the user never used this {words} before (0 when missing).",
                g,
                _T + (role,),
            )
        )
    for role, noun in DISTINCT_ROLES:
        for window in config.distinct_windows:
            specs.append(
                FeatureSpec(
                    f"user_distinct_{noun}_{window}",
                    "int64",
                    f"Distinct {noun} the user used in the trailing {window}.",
                    g,
                    _T + (role,),
                )
            )
    return specs


def _temporal() -> list[FeatureSpec]:
    g = "temporal"
    req = ("timestamp",)
    return [
        FeatureSpec("hour", "int8", "Hour of day (UTC), 0-23.", g, req),
        FeatureSpec("day_of_week", "int8", "Day of week (UTC), Monday=0.", g, req),
        FeatureSpec("is_weekend", "int8", "1 on Saturday or Sunday (UTC).", g, req),
        FeatureSpec("is_night", "int8", "1 between 00:00 and 05:59 (UTC).", g, req),
        FeatureSpec("hour_sin", "float64", "sin(2*pi*hour/24).", g, req),
        FeatureSpec("hour_cos", "float64", "cos(2*pi*hour/24).", g, req),
    ]


# (entity type, role) of the windowed count/sum aggregations.
AGG_ENTITIES: tuple[tuple[str, str], ...] = (
    ("user", "user_id"),
    ("merchant", "merchant_id"),
    ("device", "device_id"),
)


def _aggregation(config: FeatureConfig) -> list[FeatureSpec]:
    g = "aggregation"
    specs: list[FeatureSpec] = []
    for entity, role in AGG_ENTITIES:
        req = ("amount", "timestamp", role)
        for window in config.windows:
            specs.append(
                FeatureSpec(
                    f"{entity}_txn_count_{window}",
                    "int64",
                    f"The {entity}'s transactions in the trailing {window}.",
                    g,
                    req,
                )
            )
            specs.append(
                FeatureSpec(
                    f"{entity}_amount_sum_{window}",
                    "float64",
                    f"Sum of the {entity}'s amounts in the trailing {window}.",
                    g,
                    req,
                )
            )
    for entity, role, windows in (
        ("merchant", "merchant_id", config.fraud_rate_windows),
        ("user", "user_id", config.user_fraud_rate_windows),
    ):
        specs.extend(_fraud_rate(entity, ("timestamp", role, "is_fraud"), windows))
    req = ("amount", "timestamp", "user_id")
    for window in config.amount_ratio_windows:
        specs.append(
            FeatureSpec(
                f"user_amount_mean_{window}",
                "float64",
                f"Mean of the user's amounts in the trailing {window} (0 when none).",
                g,
                req,
            )
        )
        specs.append(
            FeatureSpec(
                f"amount_to_user_mean_{window}",
                "float64",
                f"amount / user_amount_mean_{window} (1 when none or the mean is 0).",
                g,
                req,
            )
        )
    return specs


def _fraud_rate(
    entity: str, req: tuple[str, ...], windows: tuple[str, ...]
) -> list[FeatureSpec]:
    specs = []
    for window in windows:
        specs.append(
            FeatureSpec(
                f"{entity}_fraud_rate_{window}",
                "float64",
                f"The {entity}'s fraud share over the {window} of transactions whose "
                "labels are known (0 when none).",
                "aggregation",
                req,
            )
        )
        specs.append(
            FeatureSpec(
                f"{entity}_labelled_count_{window}",
                "int64",
                f"Known labels behind {entity}_fraud_rate_{window}.",
                "aggregation",
                req,
            )
        )
    return specs


def feature_specs(config: FeatureConfig | None = None) -> list[FeatureSpec]:
    """Every feature of the configured groups, in output column order."""
    config = config or FeatureConfig()
    builders: dict[str, Callable[[], list[FeatureSpec]]] = {
        "transaction": _transaction,
        "behavioral": lambda: _behavioral(config),
        "temporal": _temporal,
        "aggregation": lambda: _aggregation(config),
    }
    return [spec for group in config.groups for spec in builders[group]()]


def select_features(
    config: FeatureConfig, roles: Iterable[str]
) -> tuple[list[FeatureSpec], list[dict[str, str]]]:
    """Split the configured features into computable ones and dropped ones.

    A feature is dropped when one of its required roles is not in `roles`; the
    reason names the first missing column.
    """
    available = set(roles)
    kept: list[FeatureSpec] = []
    dropped: list[dict[str, str]] = []
    for spec in feature_specs(config):
        missing = [role for role in spec.requires if role not in available]
        if missing:
            dropped.append(
                {"feature": spec.name, "reason": f"column {missing[0]!r} not mapped"}
            )
        else:
            kept.append(spec)
    return kept, dropped
