"""What a training-strategy plugin provides and receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftreg.bases import ResolvedBase
from ftreg.training.examples import EncodedExample
from ftreg.training.spec import TrainSpec


@dataclass(frozen=True)
class TrainJob:
    spec: TrainSpec
    base: ResolvedBase
    train: list[EncodedExample]
    eval: list[EncodedExample]
    output_dir: Path  # write the artifact here; the registry publishes it afterwards
    show_progress: bool = True
    notify: Callable[[str], None] = print  # one-line notes for the user (the CLI prints them to stderr)
    checkpoint_dir: Path | None = None  # where to write checkpoints every spec.save_steps (None: nowhere)
    resume_from: Path | None = None  # a complete checkpoint of this run to continue from


class TrainingStrategy:
    """Base class for strategies. Subclasses set the attributes and implement `train`."""

    name: str = ""
    kind: str = "adapter"  # or "checkpoint"
    description: str = ""

    def check(self, spec: TrainSpec) -> None:
        """Raise ConfigError for settings this strategy cannot use; runs before any data or weights load."""

    def train(self, job: TrainJob) -> dict[str, float]:
        """Train, write the artifact files into ``job.output_dir``, return metrics."""
        raise NotImplementedError
