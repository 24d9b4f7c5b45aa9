"""What a training-strategy plugin implements and receives.

`TrainSpec` holds the settings every strategy shares (data, schedule, batch, seed, checkpoints).
A strategy's own settings (LoRA's rank, early stopping's patience, ...) live in the
`StrategyOptions` dataclass it declares; `ftreg train -o KEY=VALUE` and the strategy's table in
`--config` set them, and the manifest records them under ``config.options``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ftreg.contract.manifest import Kind
from ftreg.contract.names import validate_name
from ftreg.errors import ConfigError

IGNORE_INDEX = -100  # label value that torch's cross-entropy skips
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
# Mixed precision keeps fp32 weights and optimizer state and computes matmuls in half precision.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

OptionsT = TypeVar("OptionsT", bound="StrategyOptions")


def option(default: Any, help: str, **metadata: Any) -> Any:
    """A settings field with its help text (shown by `--help` and `ftreg plugins --strategy`)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **metadata})
    return field(default=default, metadata={"help": help, **metadata})


@dataclass(frozen=True)
class EncodedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX where a token carries no loss
    line: int  # where the example starts in its file


@dataclass(frozen=True)
class ResolvedBase:
    ref: str  # what adapters record: a registry ref, a Hub id@commit, or a directory
    path: Path  # a local directory in Hugging Face layout
    fingerprint: str  # sha256 over what decides what the base computes: config, tokenizer and weights
    source: dict[str, Any]  # {"type": "registry"|"hub"|"path"|"plugin", ...}


class StrategyOptions:
    """Base class of a strategy's own settings: subclass it as a frozen dataclass.

    Give each field a help text with ``option(default, help)`` and check values in
    ``__post_init__``, raising ``ConfigError`` that names the field (as peft's configs do).
    """

    def __post_init__(self) -> None:
        """Validate the values; subclasses raise ConfigError naming the bad field."""

    @classmethod
    def from_dict(cls: type[OptionsT], values: dict[str, Any], strategy: str) -> OptionsT:
        """Options from a config table or ``-o`` pairs; strings are converted to each field's type."""
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        hints = typing.get_type_hints(cls)
        converted = {}
        for key, value in values.items():
            if key not in known:
                guess = difflib.get_close_matches(key, known, n=1)
                available = ", ".join(known) or "none"
                hint = f" (did you mean {guess[0]!r}?)" if guess else f" (its options: {available})"
                raise ConfigError(f"strategy {strategy!r} has no option {key!r}{hint}")
            converted[key] = _convert(value, hints[key], f"option {key!r} of strategy {strategy!r}")
        return cls(**converted)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """Each option's name, type, default and help, for help screens."""
        hints = typing.get_type_hints(cls)
        return [
            {
                "name": f.name,
                "type": _type_name(hints[f.name]),
                "default": f.default_factory() if f.default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING else f.default,
                "help": f.metadata.get("help", ""),
            }
            for f in fields(cls)  # type: ignore[arg-type]
        ]


@dataclass(frozen=True)
class NoOptions(StrategyOptions):
    """A strategy with no settings of its own."""


@dataclass(frozen=True)
class TrainSpec:
    """Every setting shared by all strategies for one run, validated on construction."""

    strategy: str = option(None, "Training strategy (see `ftreg plugins`), e.g. lora8bit.", required=True)
    dataset: str = option(None, "Dataset file, or builtin:NAME (builtin:support).", required=True)
    name: str = option(None, "Registry name; the result is its next version.", required=True)
    base: str | None = option(None, "Base: registry checkpoint, Hugging Face id (gpt2) or directory. Default: the embedded tiny-gpt2.")
    format: str | None = option(None, "Dataset format (see `ftreg plugins`). Default: detected from the content.")
    columns: dict[str, str] = option({}, "Read FIELD from the file's column/key NAME, e.g. question=Q. Repeatable.", metavar="FIELD=NAME", flag="--column")
    eval_dataset: str | None = option(None, "Held-out dataset for eval loss (same format), instead of --eval-split.")
    # Defaults follow the common GPT-2 support-bot recipe.
    epochs: float = option(1.0, "Passes over the training examples.")
    max_steps: int = option(-1, "Optimizer steps; > 0 overrides --epochs.")
    learning_rate: float = option(2e-4, "Peak learning rate.", aliases=("--lr",))
    batch_size: int = option(2, "Examples per micro-batch (per device); packed, a micro-batch holds up to batch_size x max_length tokens.")
    grad_accum: int = option(4, "Micro-batches per optimizer step: each step learns from batch_size x grad_accum examples.")
    lr_scheduler: str = option("linear", "Learning-rate schedule after warmup.", choices=SCHEDULERS)
    precision: str = option(
        "auto",
        "Compute precision: fp32, or bf16/fp16 mixed (fp32 weights, half-precision matmuls). auto: fp16 on CUDA, bf16 on a CPU "
        "that computes it natively, else fp32, among what the strategy supports; the record keeps the choice.",
        choices=PRECISIONS,
    )
    warmup_steps: int = option(0, "Optimizer steps of linear warmup.")
    max_grad_norm: float = option(1.0, "Clip the gradient norm to this.")
    weight_decay: float = option(0.0, "AdamW weight decay (weight matrices only).")
    seed: int = option(42, "Seed for data order, dropout and initialisation.")
    logging_steps: int = option(50, "Log the training loss every N optimizer steps.")
    max_length: int = option(256, "Truncate examples to this many tokens.")
    eval_split: float = option(0.1, "Fraction of the examples held out for eval loss.")
    eval_steps: int = option(50, "Evaluate on the held-out examples every N optimizer steps (and at the end).")
    eval_generate: int = option(0, "At the end, score greedy answers to N held-out examples (BLEU, ROUGE-L, ...) into the metrics.")
    save_steps: int = option(0, "Write a resumable checkpoint every N optimizer steps (0: never).")
    save_total_limit: int = option(2, "Keep only the newest K checkpoints.")
    options: dict[str, Any] = option({}, "The strategy's own options (-o KEY=VALUE).", cli=False)

    def __post_init__(self) -> None:
        for name in ("strategy", "dataset", "name"):
            self._require(isinstance(getattr(self, name), str) and bool(getattr(self, name)), name, "is required")
        validate_name(self.name)
        self._require(self.epochs > 0, "epochs", "must be > 0")
        self._require(self.max_steps == -1 or self.max_steps > 0, "max_steps", "must be -1 (use epochs) or > 0")
        self._require(0 < self.learning_rate < 1, "learning_rate", "must be in (0, 1)")
        for name in ("batch_size", "grad_accum", "logging_steps", "max_length", "eval_steps"):
            self._require(getattr(self, name) >= 1, name, "must be >= 1")
        self._require(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        self._require(self.save_steps >= 0, "save_steps", "must be >= 0")
        self._require(self.eval_generate >= 0, "eval_generate", "must be >= 0")
        self._require(not self.eval_generate or self.eval_split > 0 or bool(self.eval_dataset), "eval_generate", "needs held-out examples (`eval_split` > 0 or `eval_dataset`)")
        self._require(self.save_total_limit >= 1, "save_total_limit", "must be >= 1")
        self._require(self.max_grad_norm > 0, "max_grad_norm", "must be > 0")
        self._require(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        self._require(0 <= self.eval_split < 1, "eval_split", "must be in [0, 1)")
        self._require(self.lr_scheduler in SCHEDULERS, "lr_scheduler", f"must be one of {', '.join(SCHEDULERS)}")
        self._require(self.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}")
        for name in ("epochs", "learning_rate", "max_grad_norm", "weight_decay", "eval_split"):
            self._require(math.isfinite(getattr(self, name)), name, "must be a finite number")
        self._require(0 <= self.seed < 2**32, "seed", "must be in [0, 2**32)")
        self._require(
            isinstance(self.columns, dict) and all(isinstance(k, str) and isinstance(v, str) and v for k, v in self.columns.items()),
            "columns",
            "must be a table of FIELD = \"NAME\" (names are text)",
        )
        self._require(isinstance(self.options, dict), "options", "must be a table of KEY = VALUE")

    def _require(self, ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise ConfigError(f"{name} {rule}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_toml(self) -> str:
        """The spec as a config file: shared settings, then the strategy's options as a table named after it."""
        import tomli_w

        settings = {key: value for key, value in self.to_dict().items() if value is not None and key != "options"}  # TOML has no null
        options = {key: value for key, value in self.options.items() if value is not None}
        return str(tomli_w.dumps({**settings, self.strategy: options} if options else settings))

    def replace(self, **changes: Any) -> TrainSpec:
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainSpec:
        """A spec from settings of any origin (a file, a run record); types are checked, not guessed."""
        hints = typing.get_type_hints(cls)
        unknown = [key for key in values if key not in hints]
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}")
        # Numbers written as text are read as numbers: YAML 1.1 reads 2e-4 (no dot) as a string.
        return cls(**{key: _convert(value, hints[key], key, from_text=not isinstance(value, bool)) for key, value in values.items()})


@dataclass(frozen=True)
class TrainJob:
    """Everything a strategy's `train` receives."""

    spec: TrainSpec
    options: StrategyOptions  # the strategy's own options, validated
    base: ResolvedBase
    train: list[EncodedExample]
    eval: list[EncodedExample]
    output_dir: Path  # write the artifact here; the registry publishes it afterwards
    show_progress: bool = True
    notify: Callable[[str], None] = print  # one-line notes for the user (the CLI prints them to stderr)
    checkpoint_dir: Path | None = None  # where to write checkpoints every spec.save_steps (None: nowhere)
    resume_from: Path | None = None  # a complete checkpoint of this run to continue from
    # Call with (optimizer step, metrics) whenever the strategy logs; plugins' on_train_log hooks receive it.
    log: Callable[[int, dict[str, float]], None] = lambda step, metrics: None


class TrainingStrategy:
    """Base class for strategies. Subclasses set the attributes and implement `train`."""

    name: str = ""
    kind: Kind = "adapter"
    description: str = ""
    options_class: ClassVar[type[StrategyOptions]] = NoOptions
    # The precisions `train` honours (it reads the chosen one from ``job.spec.precision``); a strategy
    # that says nothing trains in fp32, and its records say so whatever the machine could do.
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)

    def options(self, spec: TrainSpec) -> StrategyOptions:
        """This strategy's options as ``spec`` sets them, validated (defaults for the rest)."""
        return self.options_class.from_dict(spec.options, self.name)

    def check(self, spec: TrainSpec) -> None:
        """Raise ConfigError for settings this strategy cannot use; runs before any data or weights load."""

    def train(self, job: TrainJob) -> dict[str, float]:
        """Train, write the artifact files into ``job.output_dir``, return metrics."""
        raise NotImplementedError


def _convert(value: Any, hint: Any, what: str, from_text: bool = True) -> Any:
    """``value`` as type ``hint``; text (from ``-o``) is parsed, other values must already fit."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(hint)
        if value is None and type(None) in members:
            return None
        for member in members:
            if member is not type(None):
                try:
                    return _convert(value, member, what, from_text)
                except ConfigError:
                    continue
        raise ConfigError(f"{what} must be {_type_name(hint)}, got {value!r}")
    target = origin or hint
    if target is bool:
        if isinstance(value, bool):
            return value
        if from_text and isinstance(value, str) and value.lower() in _BOOLEANS:
            return _BOOLEANS[value.lower()]
    elif target in (int, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (target is float or float(value).is_integer()):
            return target(value)
        if from_text and isinstance(value, str):
            try:
                return target(value)
            except ValueError:
                pass
    elif target is str:
        if isinstance(value, str):
            return value
    elif target in (dict, list, tuple):
        if isinstance(value, target):
            return value
    else:
        return value  # a type this conversion does not know: the dataclass's __post_init__ checks it
    raise ConfigError(f"{what} must be {_type_name(hint)}, got {value!r}")


_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(member) for member in typing.get_args(hint))
    names = {int: "an integer", float: "a number", str: "text", bool: "true or false", type(None): "none", dict: "a table"}
    return names.get(typing.get_origin(hint) or hint, getattr(hint, "__name__", str(hint)))
