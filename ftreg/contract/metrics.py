"""Generation metrics: how a model's greedy answers score against the reference answers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

# Measured from the model itself by every evaluation, so no metric plugin may take these names.
MODEL_METRICS = {"loss": False, "perplexity": False}  # name -> higher is better
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Metric:
    name: str = field(metadata={"help": "the key in results, and the METRIC of `ftreg tag --if-better`: lowercase letters, digits, _"})
    description: str = field(metadata={"help": "one line, shown by `ftreg eval --help`-style listings"})
    higher_is_better: bool = field(metadata={"help": "the direction `compare` marks and the gate promotes in"})
    score: Callable[[list[str], list[str]], float] = field(
        metadata={"help": "score(predictions, references): one number for the whole dataset, from lists of equal length"}
    )

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"Metric.name {self.name!r}: use lowercase letters, digits and _, starting with a letter")
        if self.name in MODEL_METRICS:
            raise ValueError(f"Metric.name {self.name!r} is measured from the model by every evaluation; choose another name")
        if not isinstance(self.higher_is_better, bool):
            raise ValueError(f"Metric.higher_is_better of {self.name!r} must be True or False, not {self.higher_is_better!r}")
        if not callable(self.score):
            raise ValueError(f"Metric.score of {self.name!r} must be a function of (predictions, references)")
