"""Per-prediction explanations for /predict/explain: SHAP values and readable reasons.

`load_explainer` rebuilds a stored model and splits its raw output into additive
feature contributions; `top_features` picks the largest and attaches a sentence from
`reason`. Imports numpy only; the model libraries and shap load on first use.
"""

from ml.explain.reasons import generic_reason, reason
from ml.explain.shap_values import (
    ALGORITHMS,
    Explanation,
    ModelExplainer,
    load_explainer,
)
from ml.explain.summary import top_features

__all__ = [
    "ALGORITHMS",
    "Explanation",
    "ModelExplainer",
    "generic_reason",
    "load_explainer",
    "reason",
    "top_features",
]
