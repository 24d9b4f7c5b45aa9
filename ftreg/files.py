"""Writing files so that nothing half-written is ever visible, and hashing them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def now() -> str:
    """The current UTC time as ISO 8601 to the second, as every record ftreg writes stores it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    # Makes a rename or a new entry in this directory survive a power cut (POSIX only).
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_json_atomically(path: Path, data: Any) -> None:
    """Readers see the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    write_json(temporary, data)
    fsync_file(temporary)
    os.replace(temporary, path)


def artifact_files(root: Path) -> list[Path]:
    """Every regular file below ``root``, as sorted relative paths."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def replace_directory(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``, moving aside (then deleting) a directory already there."""
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
        shutil.rmtree(old, ignore_errors=True)
    os.rename(source, target)


@contextmanager
def atomic_directory(target: Path, replace: bool = False) -> Iterator[Path]:
    """Fill a hidden sibling of ``target``, then rename it into place once the block succeeds.

    ``target`` must be absent or an empty directory, unless ``replace`` allows an existing one to
    be swapped out (a checkpoint written again after a resume). A sibling is on the same
    filesystem, so the rename is atomic: readers see no directory or a complete one. On any
    error the sibling goes.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    temporary.mkdir()
    try:
        yield temporary
        for rel in artifact_files(temporary):
            fsync_file(temporary / rel)
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()  # rename() cannot replace a directory on every OS
        if replace:
            replace_directory(temporary, target)
        else:
            os.rename(temporary, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
