"""Model monitoring: training baselines, data drift, performance estimation, reports.

Pure computation: no HTTP, database or Azure imports.
"""

from ml.monitoring.baseline import Baseline, FeatureBaseline, build_baseline
from ml.monitoring.drift import (
    DataDrift,
    DriftThresholds,
    FeatureDrift,
    Status,
    compute_drift,
    feature_drift,
)

__all__ = [
    "Baseline",
    "DataDrift",
    "DriftThresholds",
    "FeatureBaseline",
    "FeatureDrift",
    "Status",
    "build_baseline",
    "compute_drift",
    "feature_drift",
]
