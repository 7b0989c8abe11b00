"""Hot-path scoring: ONNX inference plus the score transform, numpy + onnxruntime only."""

from ml.scoring.onnx_scorer import OnnxScorer
from ml.scoring.transform import apply_score_transform

__all__ = ["OnnxScorer", "apply_score_transform"]
