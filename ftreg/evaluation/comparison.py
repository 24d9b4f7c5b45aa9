"""What `ftreg compare` shows, as plain data: the text table and the HTML report both render it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricRow:
    name: str
    higher_is_better: bool | None  # None: a number to read, not to rank (e.g. answer length)
    values: list[float | None]  # one per compared model, None where it has no such number

    @property
    def best(self) -> set[int]:
        """The columns holding the best value (several on a tie; none when nothing was measured or nothing ranks)."""
        measured = [value for value in self.values if value is not None]
        if not measured or self.higher_is_better is None:
            return set()
        target = max(measured) if self.higher_is_better else min(measured)
        return {index for index, value in enumerate(self.values) if value == target}


@dataclass(frozen=True)
class Sample:
    prompt: str
    reference: str
    answers: list[str]  # one per compared model, greedy


@dataclass(frozen=True)
class Comparison:
    dataset: str  # as the user named it, e.g. builtin:support:test
    fingerprint: str  # the dataset's content fingerprint: the numbers are for exactly this data
    models: list[str]  # version refs, in the order the user gave them
    rows: list[MetricRow]
    samples: list[Sample]
    curves: list[bytes | None]  # each model's loss curve as PNG bytes, None where it has none
    settings: dict[str, Any] = field(default_factory=dict)  # how the numbers were measured, e.g. max_new_tokens
