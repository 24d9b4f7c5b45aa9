"""Checkpoint directories, as both engines name them: ``step-N`` (the loop) or ``checkpoint-N`` (Trainer)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

_STEP = re.compile(r"(?:checkpoint|step)-(\d+)$")


def checkpoint_step(path: Path) -> int | None:
    """N for a directory named step-N or checkpoint-N; None for anything else."""
    match = _STEP.match(path.name)
    return int(match[1]) if match else None


def prune_checkpoints(directory: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints in ``directory``."""
    saved = sorted((step, path) for path in directory.iterdir() if (step := checkpoint_step(path)) is not None)
    for _, old in saved[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
