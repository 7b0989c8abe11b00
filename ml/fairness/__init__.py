"""Fairness metrics over protected groups (pure numpy): per-group rates, demographic
parity, equalized odds, disparate impact and FPR parity, with thresholds, statuses and
bootstrap intervals."""

from ml.fairness.audit import (
    CRITICAL,
    INSUFFICIENT_DATA,
    MISSING_COLUMN,
    NO_DATA,
    OK,
    WARNING,
    AttributeAudit,
    AuditOptions,
    GroupResult,
    MetricResult,
    audit_attribute,
)
from ml.fairness.groups import (
    CategoricalGroup,
    Group,
    GroupProblem,
    NumericBin,
    assign_groups,
    check_groups,
)
from ml.fairness.metrics import DEFAULT_THRESHOLDS, METRICS, Level

__all__ = [
    "CRITICAL",
    "DEFAULT_THRESHOLDS",
    "INSUFFICIENT_DATA",
    "METRICS",
    "MISSING_COLUMN",
    "NO_DATA",
    "OK",
    "WARNING",
    "AttributeAudit",
    "AuditOptions",
    "CategoricalGroup",
    "Group",
    "GroupProblem",
    "GroupResult",
    "Level",
    "MetricResult",
    "NumericBin",
    "assign_groups",
    "audit_attribute",
    "check_groups",
]
