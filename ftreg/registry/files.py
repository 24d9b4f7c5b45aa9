"""File helpers for publishing: hashing and making writes durable before they become visible."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

_CHUNK = 1 << 20


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


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def artifact_files(root: Path) -> list[Path]:
    """Every regular file below ``root``, as sorted relative paths."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def write_json_atomically(path: Path, data) -> None:
    """Readers see the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    write_json(temporary, data)
    fsync_file(temporary)
    os.replace(temporary, path)
