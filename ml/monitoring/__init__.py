"""Model monitoring: training baselines, data drift, performance estimation, reports.

Pure computation: no HTTP, database or Azure imports. Importing the package loads numpy
only; scipy and scikit-learn load on first use of a test or metric that needs them, so
code on the scoring path may import it.
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
from ml.monitoring.performance import (
    Calibrator,
    ConceptDrift,
    ConceptThresholds,
    Metrics,
    concept_drift,
    estimated_metrics,
    fit_calibrator,
    realised_metrics,
)

__all__ = [
    "Baseline",
    "Calibrator",
    "ConceptDrift",
    "ConceptThresholds",
    "DataDrift",
    "DriftThresholds",
    "FeatureBaseline",
    "FeatureDrift",
    "Metrics",
    "Status",
    "build_baseline",
    "compute_drift",
    "concept_drift",
    "estimated_metrics",
    "feature_drift",
    "fit_calibrator",
    "realised_metrics",
]
