"""The shape of a published version: its kind, its manifest, and the entry read back from the index."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

Kind = Literal["adapter", "checkpoint"]
KINDS: tuple[Kind, ...] = ("adapter", "checkpoint")
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
# Metrics shown in `ftreg list`, in order of preference.
KEY_METRICS = ("eval_loss", "train_loss")


class FileRecord(TypedDict):
    sha256: str
    size: int


class Manifest(TypedDict, total=False):
    """``manifest.json``: everything needed to use and to reproduce a version.

    The registry writes it; a strategy never does. Keys a newer ftreg adds are optional here.
    """

    manifest_format: int
    name: str
    version: int
    kind: Kind
    created_at: str
    base: str | None  # the base's reference: registry ref, Hub id@commit, or directory
    base_fingerprint: str
    base_source: dict[str, Any]
    strategy: str | None
    dataset: dict[str, Any] | None  # source, format, fingerprint, example counts
    config: dict[str, Any]  # every setting of the run, the strategy's options under "options"
    metrics: dict[str, float]
    files: dict[str, FileRecord]  # relative path -> sha256 and size, checked on every load
    prompt_template: str  # how generation wraps a plain prompt ("{prompt}" marks it), system prompt included
    system_prompt: str | None  # the system message the training data opened with (chat), the default at generation
    parent: str | None  # the version whose settings this run re-used (`--from`)
    run: str
    ftreg_version: str
    plugin_versions: dict[str, Any]
    hub: dict[str, str]  # where a pulled version came from: repo_id, revision, commit


@dataclass(frozen=True)
class Entry:
    """A published version, as read back from the index."""

    name: str
    version: int
    path: Path
    manifest: Manifest
    aliases: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.name}-v{self.version}"

    @property
    def kind(self) -> Kind:
        return self.manifest["kind"]

    @property
    def base(self) -> str | None:
        return self.manifest.get("base")

    @property
    def strategy(self) -> str | None:
        return self.manifest.get("strategy")

    @property
    def metrics(self) -> dict[str, float]:
        return self.manifest.get("metrics", {})

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.get("config", {})

    @property
    def created_at(self) -> str:
        return self.manifest["created_at"]

    @property
    def key_metric(self) -> tuple[str, float] | None:
        for name in KEY_METRICS:
            value = self.metrics.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return name, value
        return None

    def to_json(self) -> dict[str, Any]:
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
        """An index row as an entry; a row whose manifest does not parse reads as damaged, never an exception."""
        try:
            parsed = json.loads(manifest)
            if not isinstance(parsed, dict):
                raise ValueError("not an object")
        except ValueError as error:
            parsed = {"kind": "checkpoint", "files": {}, "created_at": "", "metrics": {}, "config": {}, "damaged": f"manifest does not parse: {error}"}
        return cls(
            name=name,
            version=version,
            path=store / name / f"v{version}",
            manifest=parsed,  # type: ignore[arg-type]
            aliases=tuple(sorted(aliases.split(","))) if aliases else (),
        )


_SHA256 = re.compile(r"[0-9a-f]{64}")


def manifest_problems(manifest: object) -> list[str]:
    """Every way ``manifest`` breaks the schema above (empty when it is valid); checked at publish and pull."""
    if not isinstance(manifest, dict):
        return [f"the manifest must be a JSON object, not {type(manifest).__name__}"]
    problems = []
    if manifest.get("kind") not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)}, not {manifest.get('kind')!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        problems.append("files must be a non-empty object of path -> {sha256, size}")
    else:
        for rel, record in files.items():
            parts = rel.replace("\\", "/").split("/")
            if not rel or rel.startswith("/") or ".." in parts:
                problems.append(f"files: {rel!r} is not a relative path inside the version")
            elif not isinstance(record, dict) or not isinstance(record.get("sha256"), str) or not _SHA256.fullmatch(record["sha256"]):
                problems.append(f"files.{rel}: sha256 must be 64 lowercase hex digits")
            elif not isinstance(record.get("size"), int) or isinstance(record["size"], bool) or record["size"] < 0:
                problems.append(f"files.{rel}: size must be a non-negative integer")
    metrics = manifest.get("metrics", {})
    if not isinstance(metrics, dict):
        problems.append("metrics must be an object of name -> number")
    else:
        for name, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                problems.append(f"metrics.{name} must be a finite number, not {value!r}")
    try:
        json.dumps(manifest, allow_nan=False)
    except ValueError:
        problems.append("it holds a number that is not finite (NaN or infinity), which JSON cannot express")
    except TypeError as error:
        problems.append(f"it holds a value JSON cannot express ({error})")
    for key in ("config", "base_source", "plugin_versions"):
        if not isinstance(manifest.get(key, {}), dict):
            problems.append(f"{key} must be an object")
    if manifest.get("dataset") is not None and not isinstance(manifest["dataset"], dict):
        problems.append("dataset must be an object or null")
    for key in ("base", "strategy", "prompt_template", "system_prompt", "base_fingerprint", "parent"):
        if manifest.get(key) is not None and not isinstance(manifest[key], str):
            problems.append(f"{key} must be text or null")
    return problems
