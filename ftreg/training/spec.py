"""TrainSpec: every setting of one training run, validated on construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ftreg.errors import ConfigError
from ftreg.registry.names import validate_name

SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")


@dataclass(frozen=True)
class TrainSpec:
    strategy: str
    dataset: str
    name: str
    base: str | None = None  # registry ref, Hugging Face id, or local directory; None: the embedded base
    format: str | None = None  # None: detected from the file's content
    columns: dict[str, str] = field(default_factory=dict)  # field -> the file's name for it
    eval_dataset: str | None = None  # held-out file; when set, eval_split is ignored
    # Defaults follow the common GPT-2 support-bot recipe.
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float = 2e-4
    batch_size: int = 2
    grad_accum: int = 4
    lr_scheduler: str = "linear"
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    seed: int = 42
    logging_steps: int = 50
    max_length: int = 256
    eval_split: float = 0.1
    save_steps: int = 0  # write a resumable checkpoint every N optimizer steps (0: never)
    save_total_limit: int = 2  # keep only the newest K checkpoints
    eval_steps: int = 50  # scratch: evaluate every N optimizer steps
    patience: int = 0  # scratch: stop after N evaluations without improvement (0: never)
    init: str | None = None  # scratch: "config:tiny" or a config.json to start from random weights
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05

    def __post_init__(self) -> None:
        validate_name(self.name)
        self._require(self.epochs > 0, "epochs", "must be > 0")
        self._require(self.max_steps == -1 or self.max_steps > 0, "max_steps", "must be -1 (use epochs) or > 0")
        self._require(0 < self.learning_rate < 1, "learning_rate", "must be in (0, 1)")
        for name in ("batch_size", "grad_accum", "logging_steps", "max_length", "eval_steps", "lora_r", "lora_alpha"):
            self._require(getattr(self, name) >= 1, name, "must be >= 1")
        self._require(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        self._require(self.patience >= 0, "patience", "must be >= 0")
        self._require(self.save_steps >= 0, "save_steps", "must be >= 0")
        self._require(self.save_total_limit >= 1, "save_total_limit", "must be >= 1")
        self._require(self.max_grad_norm > 0, "max_grad_norm", "must be > 0")
        self._require(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        self._require(0 <= self.eval_split < 1, "eval_split", "must be in [0, 1)")
        self._require(0 <= self.lora_dropout < 1, "lora_dropout", "must be in [0, 1)")
        self._require(self.lr_scheduler in SCHEDULERS, "lr_scheduler", f"must be one of {', '.join(SCHEDULERS)}")

    def _require(self, ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise ConfigError(f"{name} {rule}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
