"""Scoring of predicted labels against reference labels: numpy only, no torch.

The same functions score torch, ONNX, TFLite and gateway outputs, so they take label arrays,
never a model.
"""

from ecgedge.evaluate.metrics import aami_metrics, agreement, confusion_matrix

__all__ = ["aami_metrics", "agreement", "confusion_matrix"]
