"""Training configuration: one typed object, with the named presets in one place."""

from dataclasses import asdict, dataclass, replace
from types import MappingProxyType

from ecgedge.errors import EcgEdgeError

CLASS_WEIGHTINGS = ("none", "sqrt", "inverse")


@dataclass(frozen=True)
class TrainConfig:
    name: str  # training preset it came from
    data_preset: str  # preprocessing preset (ecgedge.preprocess.PRESETS)
    split: str = "inter-patient"
    # which patient fold of DS1 validates (ecgedge.data.splits.patient_folds); 0: the usual
    # validation patients. Other folds serve cross-validated comparisons of configurations.
    val_fold: int = 0
    arch: str = "resnet18"
    weights: str = "none"  # none | imagenet | PATH
    rr_features: bool = False
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    class_weighting: str = "sqrt"  # loss weights ~ (1/frequency)^p, p = 0, 0.5 or 1
    train_fraction: float = 1.0  # patient-stratified share of the training beats
    max_n_per_record: int | None = None  # fixed cap on N beats per training record (old quick runs)
    # N beats drawn afresh from all training N beats every epoch (None: all of them every epoch):
    # balances the classes per epoch while every N beat of DS1 is still seen over the run.
    normal_per_epoch: int | None = None
    augment: str = "none"  # none | all | comma list of ecgedge.train.augment.AUGMENTATIONS
    patience: int = 4  # epochs without a better validation macro-F1 before stopping
    # Half-life, in epochs, of the exponential moving average of the weights that is validated and
    # saved (0: the raw weights, as runs made before it existed). See ecgedge.train.fit.weight_average.
    ema_half_life: float = 0.0
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 512

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**d)

    def check(self) -> "TrainConfig":
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise EcgEdgeError(f"unknown class weighting {self.class_weighting!r}; choose {', '.join(CLASS_WEIGHTINGS)}.")
        if not 0 < self.train_fraction <= 1:
            raise EcgEdgeError(f"--train-fraction must be in (0, 1], got {self.train_fraction}.")
        if self.epochs < 1 or self.batch_size < 1:
            raise EcgEdgeError("--epochs and --batch-size must be at least 1.")
        if not 0 <= self.ema_half_life < 1e6:
            raise EcgEdgeError(f"--ema-half-life must be 0 (off) or a positive number of epochs, got {self.ema_half_life}.")
        from ecgedge.data.splits import VALIDATION_FOLDS

        if not 0 <= self.val_fold < VALIDATION_FOLDS or (self.val_fold and self.split != "inter-patient"):
            raise EcgEdgeError(f"--val-fold must be in 0..{VALIDATION_FOLDS - 1} and needs the inter-patient split, got {self.val_fold} ({self.split}).")
        if not 0 <= self.weight_decay < 10:
            raise EcgEdgeError(f"--weight-decay must be in [0, 10), got {self.weight_decay}.")
        if self.normal_per_epoch is not None and self.normal_per_epoch < 1:
            raise EcgEdgeError(f"--normal-per-epoch must be at least 1, got {self.normal_per_epoch}.")
        from ecgedge.train.augment import parse_augment

        parse_augment(self.augment)
        return self


TRAIN_PRESETS = MappingProxyType(
    {
        # The main job: the recipe with the best DS1-validation score over 3 seeds (edge + rhythm
        # features + all augmentations, docs/results.md) on a budget of about 10 minutes of training
        # on two CPU cores: every S/V/F/Q beat of the DS1 training records and 8,000 fresh N beats
        # per epoch (chosen over 4,000 by 5-fold patient cross-validation on DS1: pooled
        # out-of-fold macro-F1 (N,S,V,F) 0.596 vs 0.570; docs/results.md, session 6).
        "quick": TrainConfig(name="quick", data_preset="edge", epochs=8, normal_per_epoch=8000, rr_features=True, augment="all", patience=4),
        # The Pi-sized input on all of DS1, the recipe with the best validation mean over 3 seeds;
        # 24 min on two shared CPU cores (measured without augmentation, which costs < 2 %).
        "edge": TrainConfig(name="edge", data_preset="edge", epochs=24, normal_per_epoch=8000, rr_features=True, augment="all", patience=8),
        # The published recipe, 224x224 images: meant for a GPU (all DS1 beats every epoch).
        "paper": TrainConfig(name="paper", data_preset="paper", epochs=12, batch_size=64, lr=3e-4, patience=4, rr_features=True),
    }
)


def train_preset(name: str, **overrides) -> TrainConfig:
    try:
        base = TRAIN_PRESETS[name]
    except KeyError:
        raise EcgEdgeError(f"unknown training preset {name!r}; choose one of {', '.join(TRAIN_PRESETS)}.") from None
    return replace(base, **{k: v for k, v in overrides.items() if v is not None}).check()
