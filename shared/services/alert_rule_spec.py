"""The alert rule language: checking a rule as given, and whether a value matches it.

A rule watches one source. Numeric sources compare a number; drift_status and
bias_metric compare statuses by rank (OK < WARNING < CRITICAL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.errors import ValidationFailed, field_error

STATUS_RANK = {"NO_DATA": 0, "OK": 0, "WARNING": 1, "CRITICAL": 2}
STATUS_SOURCES = {"drift_status", "bias_metric"}
ALERT_TYPE = {
    "drift_status": "DRIFT",
    "feature_drift": "DRIFT",
    "concept_drift": "DRIFT",
    "estimated_performance": "PERFORMANCE",
    "bias_metric": "BIAS",
    "latency_p99": "LATENCY",
    "error_rate": "PERFORMANCE",
    "prediction_volume": "PERFORMANCE",
}
OPS = (">", ">=", "<", "<=", "==")
SEVERITIES = ("INFO", "WARNING", "CRITICAL")
_COOLDOWN = re.compile(r"^(\d+)([smhd]?)$")
MAX_COOLDOWN = 9999 * 86400
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class RuleSpec:
    name: str
    source: str
    model_id: str | None
    op: str
    value: float | str
    severity: str
    cooldown_seconds: int
    channels: list[str]
    action: dict[str, Any] | None
    is_active: bool

    @property
    def alert_type(self) -> str:
        return ALERT_TYPE[self.source]

    @property
    def threshold(self) -> float:
        """The value as a number: a status compares by its rank."""
        if isinstance(self.value, str):
            return float(STATUS_RANK[self.value])
        return float(self.value)


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field} {message}.", field_error(field, message))


def parse_cooldown(raw: Any) -> int:
    if isinstance(raw, bool):
        raise _fail("cooldown", "must be seconds or a duration such as 1h")
    if isinstance(raw, int | float) and 0 <= raw <= MAX_COOLDOWN:
        if float(raw).is_integer():
            return int(raw)
    if isinstance(raw, str):
        found = _COOLDOWN.match(raw.strip())
        if found and int(found.group(1)) * _UNIT[found.group(2)] <= MAX_COOLDOWN:
            return int(found.group(1)) * _UNIT[found.group(2)]
    raise _fail("cooldown", "must be seconds or a duration such as 1h")


def _channels(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _fail("channels", "must be a list of webhook URLs")
    for i, url in enumerate(raw):
        try:
            parts = urlsplit(url) if isinstance(url, str) else None
        except ValueError:  # e.g. an unclosed IPv6 bracket
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise _fail(f"channels[{i}]", "must be an http or https URL")
    return list(raw)


def _action(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") != "retrain":
        raise _fail("action.type", "must be retrain")
    strategy = raw.get("data_strategy")
    if not isinstance(strategy, dict) or strategy.get("type") not in (
        "replace",
        "merge",
        "sliding_window",
    ):
        raise _fail(
            "action.data_strategy.type", "must be replace, merge or sliding_window"
        )
    promote = raw.get("auto_promote", False)
    if not isinstance(promote, bool):
        raise _fail("action.auto_promote", "must be true or false")
    return {"type": "retrain", "data_strategy": strategy, "auto_promote": promote}


def parse_rule(body: dict[str, Any]) -> RuleSpec:
    """The rule as given, checked; ValidationFailed names the first bad field."""
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > 255:
        raise _fail("name", "is required (at most 255 characters)")
    source = body.get("source")
    if source not in ALERT_TYPE:
        raise _fail("source", "must be one of " + ", ".join(ALERT_TYPE))
    condition = body.get("condition")
    if not isinstance(condition, dict):
        raise _fail("condition", "must be an object {op, value}")
    op = condition.get("op")
    if op not in OPS:
        raise _fail("condition.op", "must be one of " + " ".join(OPS))
    value = condition.get("value")
    if source in STATUS_SOURCES:
        if value not in ("OK", "WARNING", "CRITICAL"):
            raise _fail("condition.value", "must be OK, WARNING or CRITICAL")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail("condition.value", "must be a number")
    severity = body.get("severity")
    if severity not in SEVERITIES:
        raise _fail("severity", "must be INFO, WARNING or CRITICAL")
    is_active = body.get("is_active", True)
    if not isinstance(is_active, bool):
        raise _fail("is_active", "must be true or false")
    model_id = body.get("model_id")
    if model_id is not None and not isinstance(model_id, str):
        raise _fail("model_id", "must be a model id or null")
    return RuleSpec(
        name=name,
        source=source,
        model_id=model_id,
        op=op,
        value=value,
        severity=severity,
        cooldown_seconds=parse_cooldown(body.get("cooldown", 3600)),
        channels=_channels(body.get("channels")),
        action=_action(body.get("action")),
        is_active=is_active,
    )


def matches(op: str, rule_value: float | str, observed: float | str) -> bool:
    """Whether an observed value satisfies ``observed <op> rule_value``."""
    left = STATUS_RANK.get(observed, -1) if isinstance(observed, str) else observed
    right = STATUS_RANK[rule_value] if isinstance(rule_value, str) else rule_value
    if isinstance(observed, str) and observed not in STATUS_RANK:
        return False
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    return left == right
