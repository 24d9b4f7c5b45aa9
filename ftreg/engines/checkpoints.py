"""Checkpoint directories, as both engines name them: ``step-N`` (the loop) or ``checkpoint-N`` (Trainer).

A checkpoint counts once it is *sealed*: ``checkpoint.json``, written last, records the sha256 of
every other file, so a half-written checkpoint never counts and a damaged one is detected before
resuming from it (and skipped for the next older one).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from ftreg.files import artifact_files, fsync_file, sha256_file

SEAL = "checkpoint.json"

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


def seal_checkpoint(directory: Path) -> None:
    """Record the sha256 of every file in ``directory``; call it once the checkpoint is complete."""
    files = {rel.as_posix(): sha256_file(directory / rel) for rel in artifact_files(directory) if rel.as_posix() != SEAL}
    for rel in files:
        fsync_file(directory / rel)
    (directory / SEAL).write_text(json.dumps({"files": files}, indent=2, sort_keys=True) + "\n")
    fsync_file(directory / SEAL)


def is_sealed(directory: Path) -> bool:
    try:
        return isinstance(json.loads((directory / SEAL).read_text()).get("files"), dict)
    except (OSError, ValueError, AttributeError):
        return False


def checkpoint_problem(directory: Path) -> str | None:
    """Why the checkpoint cannot be resumed from (unsealed, a file missing or changed), or None."""
    if not is_sealed(directory):
        return "it is incomplete (not sealed)"
    recorded = json.loads((directory / SEAL).read_text())["files"]
    for rel, digest in sorted(recorded.items()):
        if not (directory / rel).is_file():
            return f"{rel} is missing"
        if sha256_file(directory / rel) != digest:
            return f"{rel} does not match its recorded sha256"
    return None

