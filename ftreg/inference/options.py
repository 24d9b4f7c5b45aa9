"""How to generate: the decoding settings of `ftreg generate`, validated (a module of its own, so the CLI
can build its flags without loading the composer)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ftreg.errors import ConfigError


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 80
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.1
    greedy: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        checks = {"max_new_tokens": self.max_new_tokens >= 1, "repetition_penalty": 0 < self.repetition_penalty < math.inf}
        if not self.greedy:  # greedy decoding uses no sampling setting, so none can be out of range
            checks.update(temperature=0 < self.temperature < math.inf, top_p=0 < self.top_p <= 1, top_k=self.top_k >= 0)
        for field, ok in checks.items():
            if not ok:
                raise ConfigError(f"{field} is out of range: {getattr(self, field)!r}")
