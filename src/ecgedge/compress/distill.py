"""Knowledge distillation from the float source model while a compressed model is fine-tuned.

A pruned network trained on labels alone learns its own decision boundaries, and on the rare
classes (S, F) those drift far from the model it replaces. The point of compression is the *same*
classifier, smaller, so the student is also taught the teacher's soft outputs (Hinton et al.
2015): ``loss = (1 - alpha) * CE(student, labels) + alpha * T^2 * KL(teacher_T || student_T)``.
The labels' class weighting is kept for the CE part; the teacher's probabilities carry its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ecgedge.errors import EcgEdgeError


@dataclass(frozen=True)
class DistillConfig:
    alpha: float = 0.5  # weight of the teacher term; 0 = labels only
    temperature: float = 4.0

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise EcgEdgeError(f"--distill weight must be in (0, 1], got {self.alpha}.")
        if not self.temperature > 0:
            raise EcgEdgeError(f"--distill-temperature must be positive, got {self.temperature}.")

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "temperature": self.temperature}


class DistillationLoss:
    """``criterion(logits, y, x, rr)`` for :func:`ecgedge.train.fit.train_epoch`.

    ``teacher`` is frozen and run in eval mode (its BatchNorm statistics are the trained ones).
    """

    def __init__(self, teacher: torch.nn.Module, class_weights: torch.Tensor, config: DistillConfig):
        self.teacher = teacher.eval().requires_grad_(False)
        self.weights = class_weights
        self.config = config

    def __call__(self, logits: torch.Tensor, y: torch.Tensor, x: torch.Tensor, rr: torch.Tensor | None) -> torch.Tensor:
        with torch.no_grad():
            target = self.teacher(x, rr).float()
        t, a = self.config.temperature, self.config.alpha
        hard = F.cross_entropy(logits, y, weight=self.weights)
        soft = F.kl_div(F.log_softmax(logits / t, dim=1), F.log_softmax(target / t, dim=1), log_target=True, reduction="batchmean")
        return (1 - a) * hard + a * t * t * soft
