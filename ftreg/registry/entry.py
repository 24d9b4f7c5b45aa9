"""A published version, as read back from the index."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# Metrics shown in `ftreg list`, in order of preference.
KEY_METRICS = ("eval_loss", "train_loss")


@dataclass(frozen=True)
class Entry:
    name: str
    version: int
    path: Path
    manifest: dict
    aliases: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.name}-v{self.version}"

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def base(self) -> str | None:
        return self.manifest.get("base")

    @property
    def strategy(self) -> str | None:
        return self.manifest.get("strategy")

    @property
    def metrics(self) -> dict:
        return self.manifest.get("metrics", {})

    @property
    def config(self) -> dict:
        return self.manifest.get("config", {})

    @property
    def created_at(self) -> str:
        return self.manifest["created_at"]

    @property
    def key_metric(self) -> tuple[str, float] | None:
        for name in KEY_METRICS:
            if name in self.metrics:
                return name, self.metrics[name]
        return None

    def to_json(self) -> dict:
        """The stable JSON shape of `ftreg list --json` and `ftreg show --json` (docs/json.md)."""
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "path": str(self.path),
            **self.manifest,
        }

    @classmethod
    def from_row(cls, store: Path, name: str, version: int, manifest: str, aliases: str | None) -> Entry:
        return cls(
            name=name,
            version=version,
            path=store / name / f"v{version}",
            manifest=json.loads(manifest),
            aliases=tuple(sorted(aliases.split(","))) if aliases else (),
        )
