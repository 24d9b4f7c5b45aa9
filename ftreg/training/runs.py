"""Training runs: a directory per run with its settings, status and checkpoints, for `--resume`.

    <FTREG_HOME>/runs/<run-id>/run.json        settings, status, pid, published reference
    <FTREG_HOME>/runs/<run-id>/checkpoints/    written by the strategy every --save-steps

Checkpoints are written in a temporary directory, sealed (the sha256 of every file recorded) and
renamed into place; one counts only once sealed, and a resume skips any whose files no longer
match, so a checkpoint is never half used. A live run holds ``run.lock``; the kernel releases it
however the process ends, so a run on record as running whose lock is free was interrupted.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ftreg.engines.checkpoints import checkpoint_problem, checkpoint_step, is_sealed
from ftreg.errors import ConfigError, UnknownReference
from ftreg.files import now, write_json_atomically
from ftreg.registry import Registry


@dataclass
class Run:
    path: Path
    record: dict

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def lock(self) -> None:
        """Hold this run's lock while this process trains it (released when the process ends, however
        it ends); refuse if another process holds it. The lock, not a pid, tells a live run from a dead one."""
        from filelock import FileLock, Timeout

        self._lock = FileLock(self.path / "run.lock")
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise ConfigError(f"run {self.id} is being trained by another process") from None

    def unlock(self) -> None:
        if getattr(self, "_lock", None) is not None:
            self._lock.release()

    def _held(self) -> bool:
        from filelock import FileLock, Timeout

        if getattr(self, "_lock", None) is not None and self._lock.is_locked:
            return True
        probe = FileLock(self.path / "run.lock")
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        probe.release()
        return False

    def update(self, **fields) -> None:
        self.record.update(fields, updated_at=now())
        write_json_atomically(self.path / "run.json", self.record)

    @property
    def status(self) -> str:
        """running, finished, failed, or interrupted (its process died without a word)."""
        status = self.record["status"]
        # Another machine's run: nothing here can tell, so it is taken to be still going.
        if status == "running" and self.record.get("host") == socket.gethostname() and not self._held():
            return "interrupted"
        return status

    @property
    def resumable(self) -> bool:
        return self.status in ("interrupted", "failed") and self.newest_checkpoint() is not None

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete (sealed) checkpoints, oldest first."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = []
        for path in self.checkpoint_dir.iterdir():
            step = checkpoint_step(path)
            if step is not None and is_sealed(path):
                found.append((step, path))
        return sorted(found)

    def newest_checkpoint(self) -> Path | None:
        checkpoints = self.checkpoints()
        return checkpoints[-1][1] if checkpoints else None

    def checkpoint_to_resume(self, notify: Callable[[str], None]) -> Path | None:
        """The newest checkpoint whose files match their recorded hashes; damaged ones are named and skipped."""
        for _, path in reversed(self.checkpoints()):
            problem = checkpoint_problem(path)
            if problem is None:
                return path
            notify(f"warning: skipping checkpoint {path.name} of run {self.id}: {problem}")
        return None

    def to_json(self) -> dict:
        newest = self.checkpoints()
        return {
            **self.record,
            "id": self.id,
            "status": self.status,
            "resumable": self.resumable,
            "newest_checkpoint_step": newest[-1][0] if newest else None,
        }


def runs_dir(registry: Registry) -> Path:
    return registry.home / "runs"


def start_run(registry: Registry, settings: dict, parent: str | None) -> Run:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = runs_dir(registry) / f"{settings['name']}-{stamp}-{uuid.uuid4().hex[:4]}"
    path.mkdir(parents=True)
    run = Run(path, {"settings": settings, "parent": parent, "status": "running", "started_at": now(), "published": None, "error": None})
    run.update(pid=os.getpid(), host=socket.gethostname())
    return run


def load_run(registry: Registry, run_id: str) -> Run:
    path = runs_dir(registry) / run_id
    if "/" in run_id or run_id.startswith(".") or not (path / "run.json").is_file():
        raise UnknownReference(f"unknown run {run_id!r}; see `ftreg runs`")
    return _repaired(registry, _read_run(path))


def _repaired(registry: Registry, run: Run) -> Run:
    """A run killed after it published but before its record said so is finished: the registry knows."""
    if run.status == "interrupted" and (published := registry.published_by_run(run.id)) is not None:
        run.update(status="finished", published=published.ref)
    return run


def _read_run(path: Path) -> Run:
    """The run in ``path``; a record that does not parse reads as a damaged run, never an exception."""
    try:
        record = json.loads((path / "run.json").read_text(encoding="utf-8"))
        if not isinstance(record, dict) or not isinstance(record.get("settings"), dict) or not isinstance(record.get("started_at"), str):
            raise ValueError("not a run record")
    except (OSError, ValueError) as error:
        return Run(path, {"status": "damaged", "error": f"run.json: {error}", "settings": {}, "started_at": "", "parent": None, "published": None})
    return Run(path, record)


def list_runs(registry: Registry) -> list[Run]:
    directory = runs_dir(registry)
    if not directory.is_dir():
        return []
    found = (_repaired(registry, _read_run(path)) for path in directory.iterdir() if (path / "run.json").is_file())
    return sorted(found, key=lambda run: run.record["started_at"])


def prunable(registry: Registry) -> list[tuple[Path, str]]:
    """Checkpoints nothing will resume from: those of finished runs (their version is published)."""
    return [
        (run.checkpoint_dir, f"checkpoints of run {run.id}, which finished as {run.record.get('published')}")
        for run in list_runs(registry)
        if run.status == "finished" and run.checkpoint_dir.is_dir() and any(run.checkpoint_dir.iterdir())
    ]
