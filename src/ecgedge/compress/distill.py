"""Knowledge distillation from the float source model while a compressed model is fine-tuned.

A pruned network trained on labels alone learns its own decision boundaries, and on the rare
classes (S, F) those drift far from the model it replaces. The point of compression is the *same*
classifier, smaller, so the student is also taught the teacher's soft outputs (Hinton et al.
2015): ``loss = (1 - alpha) * CE(student, labels) + alpha * T^2 * KL(teacher_T || student_T)``.
The labels' class weighting is kept for the CE part; the teacher's probabilities carry its own, and
``class_weighted`` also weights each beat's KL term by the class weight of the teacher's call.

Two ways to ask the teacher. ``from_teacher``: once per training beat, as it is (cheap). ``live``:
on every batch, on exactly the augmented view the student sees ("function matching", Beyer et al.
2022, "Knowledge distillation: a good teacher is patient and consistent"). On training beats the
teacher is nearly one-hot, so matching it there alone left the student disagreeing with it on 2.5
to 4.5 % of the beats of unseen (validation) patients; augmented views show the student the
teacher's answers off the training beats, where the two would otherwise drift apart. ``mixup``:
the augmented views mixed pairwise within each batch (:class:`MixedViews`), so the student is also
shown inputs *between* classes, where the teacher's boundary lies (Beyer et al.'s function matching
mixes every batch this way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ecgedge.errors import EcgEdgeError
from ecgedge.train.batches import BeatTensors
from ecgedge.train.predict import predict_logits


VIEWS = ("beats", "augmented", "mixup")


@dataclass(frozen=True)
class DistillConfig:
    alpha: float = 1.0  # weight of the teacher term (1: the teacher alone, the most faithful copy)
    temperature: float = 4.0
    # "beats": the teacher's answer on each training beat as it is; "augmented": on each augmented
    # view the student is shown, computed live; "mixup": on augmented views mixed pairwise (see the
    # module docstring)
    views: str = "beats"
    # Each beat's KL term weighted by the training class weight of the teacher's own call: the
    # teacher was trained with class weights, so an unweighted KL asks the copy to be faithful
    # mostly on N beats, and it drops the teacher's rarer S calls on unseen patients.
    class_weighted: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise EcgEdgeError(f"--distill must be in [0, 1] (0: labels only), got {self.alpha}.")
        if not self.temperature > 0:
            raise EcgEdgeError(f"--distill-temperature must be positive, got {self.temperature}.")
        if self.views not in VIEWS:
            raise EcgEdgeError(f"--distill-views must be one of {', '.join(VIEWS)}, got {self.views!r}.")
        if self.views == "mixup" and self.alpha != 1:
            raise EcgEdgeError("--distill-views mixup needs --distill 1: a mixed input has no label, only the teacher's answer.")

    @property
    def live(self) -> bool:
        """The teacher must answer each batch's own inputs (they are made afresh per batch)."""
        return self.views != "beats"

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "temperature": self.temperature, "views": self.views, "class_weighted": self.class_weighted}


class DistillationLoss:
    """``criterion(logits, y, batch)`` for :func:`ecgedge.train.fit.train_epoch`.

    Holds the teacher's logits for every beat it will be asked about: beats are not augmented, so
    the frozen teacher's answer per beat never changes and is computed once, not once per epoch
    (running the float ResNet-18 on every batch halved a 60 %-pruned student's training speed).
    """

    def __init__(self, teacher_logits: torch.Tensor | None, class_weights: torch.Tensor, config: DistillConfig, teacher: torch.nn.Module | None = None):
        self.teacher_logits = teacher_logits
        self.teacher = teacher
        self.weights = class_weights
        self.config = config

    @classmethod
    def live(cls, teacher: torch.nn.Module, class_weights: torch.Tensor, config: DistillConfig) -> DistillationLoss:
        """Run the frozen ``teacher`` (a copy kept in eval mode) on each batch's own inputs."""
        teacher = teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return cls(None, class_weights, config, teacher)

    @classmethod
    def from_teacher(cls, teacher: torch.nn.Module, data: BeatTensors, beats: np.ndarray, class_weights: torch.Tensor, config: DistillConfig, *, batch_size: int = 512, device: torch.device = torch.device("cpu")) -> DistillationLoss:
        """Run the (eval-mode) ``teacher`` once over ``beats``; other beats have no target (NaN)."""
        table = torch.full((len(data.labels), teacher.num_classes), float("nan"))
        with torch.inference_mode():
            table[torch.from_numpy(np.asarray(beats))] = torch.from_numpy(predict_logits(teacher, data, np.asarray(beats), batch_size, device))
        return cls(table.to(device), class_weights, config)

    def __call__(self, logits: torch.Tensor, y: torch.Tensor, batch: np.ndarray, inputs: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.teacher is not None:
            if inputs is None:
                raise EcgEdgeError("live distillation needs the batch's inputs.")
            with torch.no_grad():
                target = self.teacher(*inputs).float()
        else:
            target = self.teacher_logits[torch.from_numpy(np.asarray(batch)).to(self.teacher_logits.device)]
            if torch.isnan(target).any():
                raise EcgEdgeError("distillation asked about beats the teacher was not run on.")
        t, a = self.config.temperature, self.config.alpha
        hard = F.cross_entropy(logits, y, weight=self.weights)
        log_p_student, log_p_teacher = F.log_softmax(logits / t, dim=1), F.log_softmax(target / t, dim=1)
        if self.config.class_weighted:
            w = self.weights[target.argmax(1)]
            soft = (w * F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="none").sum(1)).sum() / w.sum()
        else:
            soft = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
        return (1 - a) * hard + a * t * t * soft


class MixedViews:
    """Training batches of ``data`` mixed pairwise: ``lam * a + (1 - lam) * b``, images and rhythm.

    Each beat of a batch is mixed with another beat of the same batch, ``lam ~ U(0, 1)`` per beat,
    both drawn from the batch's ``rng`` (so a seed gives the same mixes). Without ``rng``
    (validation, prediction, calibration) beats are returned as they are. Labels are returned
    unmixed: only the teacher's answer on the mixed input is a target
    (``DistillConfig`` refuses ``mixup`` with a label term).
    """

    def __init__(self, data: BeatTensors):
        self.data = data
        self.labels = data.labels

    def get(self, idx: np.ndarray, device: torch.device, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, rr, y = self.data.get(idx, device, rng)
        if rng is None or len(idx) < 2:
            return x, rr, y
        partner = torch.from_numpy(rng.permutation(len(idx))).to(device)
        lam = torch.from_numpy(rng.uniform(size=len(idx)).astype(np.float32)).to(device)
        x = torch.lerp(x[partner], x, lam.view(-1, 1, 1, 1))
        rr = torch.lerp(rr[partner], rr, lam.view(-1, 1).to(rr.dtype))
        return x, rr, y
