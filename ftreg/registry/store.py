"""The local registry: an SQLite index plus one immutable directory per version.

Layout under the registry home::

    registry.db                 names, versions (with their manifest), aliases, alias history
    store/<name>/v<N>/          artifact files + manifest.json
    tmp/                        staging directories; same filesystem as store/, so a rename publishes

A version becomes visible only when its row is committed, and its directory is renamed into
place before that, so readers never see a half-written version.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ftreg import plugins
from ftreg.contract.manifest import KINDS, MANIFEST, MANIFEST_FORMAT, Entry, Manifest, manifest_problems
from ftreg.contract.names import Ref, parse_ref, validate_name
from ftreg.errors import ArtifactError, RegistryConflict, RegistryError, UnknownReference
from ftreg.files import artifact_files, fsync_dir, fsync_file, now, sha256_file, write_json
from ftreg.registry import db as dbmod
from ftreg.registry import lineage
from ftreg.version import __version__

# A staging directory this old whose lock nobody holds belongs to a dead process.
STALE_AFTER_S = 3600

_SELECT = """
    SELECT v.name, v.version, v.manifest, group_concat(a.alias)
    FROM versions v LEFT JOIN aliases a ON a.name = v.name AND a.version = v.version
"""


def default_home() -> Path:
    if home := os.environ.get("FTREG_HOME"):
        return Path(home)
    from platformdirs import user_data_dir

    return Path(user_data_dir("ftreg", appauthor=False))


class Registry:
    def __init__(self, home: str | os.PathLike | None = None):
        self.home = Path(home) if home is not None else default_home()
        self.store = self.home / "store"
        self.tmp = self.home / "tmp"
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self.home.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise RegistryError(f"{self.home}: cannot create the registry directory: {error.strerror}") from error
            self._db = dbmod.connect(self.home / "registry.db")
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- reading -------------------------------------------------------------------------------

    def entries(self, name: str | None = None) -> list[Entry]:
        where, params = ("WHERE v.name = ?", (validate_name(name),)) if name else ("", ())
        rows = self.db.execute(f"{_SELECT} {where} GROUP BY v.name, v.version ORDER BY v.name, v.version", params)
        return [Entry.from_row(self.store, *row) for row in rows]

    def resolve(self, ref: str | Ref) -> Entry:
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        params: tuple[str | int, ...]
        if ref.alias:
            where, params = "WHERE v.name = ? AND v.version = (SELECT version FROM aliases WHERE name = ? AND alias = ?)", (ref.name, ref.name, ref.alias)
        elif ref.version is not None:
            where, params = "WHERE v.name = ? AND v.version = ?", (ref.name, ref.version)
        else:
            where, params = "WHERE v.name = ? AND v.version = (SELECT max(version) FROM versions WHERE name = ?)", (ref.name, ref.name)
        row = self.db.execute(f"{_SELECT} {where} GROUP BY v.name, v.version", params).fetchone()
        if row is None:
            raise UnknownReference(self._explain_unknown(ref))
        return Entry.from_row(self.store, *row)

    def _explain_unknown(self, ref: Ref) -> str:
        versions = [v for (v,) in self.db.execute("SELECT version FROM versions WHERE name = ? ORDER BY version", (ref.name,))]
        if not versions:
            return f"unknown reference {str(ref)!r}: no model named {ref.name!r} in {self.home}"
        if ref.alias:
            return f"unknown reference {str(ref)!r}: {ref.name} has no alias {ref.alias!r}"
        return f"unknown reference {str(ref)!r}: {ref.name} has versions {', '.join(map(str, versions))}"

    def exists(self, ref: str) -> bool:
        try:
            self.resolve(ref)
        except UnknownReference:
            return False
        return True

    def alias_history(self, name: str, alias: str) -> list[dict]:
        rows = self.db.execute(
            "SELECT version, moved_at, moved_by, evidence FROM alias_history WHERE name = ? AND alias = ? ORDER BY id",
            (validate_name(name), validate_name(alias, "alias")),
        )
        return [{"version": v, "moved_at": at, "moved_by": by, **({"evidence": json.loads(evidence)} if evidence else {})} for v, at, by, evidence in rows]

    def evaluations(self, entry: Entry) -> list[dict[str, Any]]:
        """Every stored evaluation of ``entry``, newest first: dataset, fingerprint, settings, results, evaluated_at."""
        rows = self.db.execute(
            "SELECT dataset, fingerprint, settings, results, evaluated_at FROM evaluations WHERE name = ? AND version = ? ORDER BY evaluated_at DESC",
            (entry.name, entry.version),
        )
        return [{"dataset": dataset, "fingerprint": fingerprint, "settings": json.loads(settings), "results": json.loads(results), "evaluated_at": at}
                for dataset, fingerprint, settings, results, at in rows]

    def evaluation(self, entry: Entry, fingerprint: str, settings: dict[str, Any]) -> dict[str, Any] | None:
        """The stored evaluation of ``entry`` on this data with these settings, with its answers; None if there is none."""
        row = self.db.execute(
            "SELECT dataset, results, answers, evaluated_at FROM evaluations WHERE name = ? AND version = ? AND fingerprint = ? AND settings = ?",
            (entry.name, entry.version, fingerprint, _settings_key(settings)),
        ).fetchone()
        if row is None:
            return None
        dataset, results, answers, at = row
        return {"dataset": dataset, "fingerprint": fingerprint, "settings": settings, "results": json.loads(results), "answers": json.loads(answers), "evaluated_at": at}

    def record_evaluation(self, entry: Entry, dataset: str, fingerprint: str, settings: dict[str, Any], results: dict[str, float], answers: list[str]) -> None:
        """Store (or replace) what evaluating ``entry`` on this data with these settings measured."""
        with dbmod.write(self.db) as db:
            db.execute(
                "INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.name, entry.version, fingerprint, _settings_key(settings), dataset, json.dumps(results, allow_nan=False), json.dumps(answers), now()),
            )

    # -- publishing ----------------------------------------------------------------------------

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh directory on the registry's filesystem for a strategy to write artifacts into.

        Pass it to `publish`; whatever is left of it when the block ends is discarded.
        A lock held for the block's life tells the sweeper the directory is still in use.
        """
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._sweep_stale()
        path = self.tmp / f"stage-{uuid.uuid4().hex}"
        lock_path = Path(f"{path}.lock")
        with FileLock(lock_path):
            path.mkdir()
            try:
                yield path
            finally:
                shutil.rmtree(path, ignore_errors=True)
                lock_path.unlink(missing_ok=True)

    def garbage(self, remove: bool = False) -> list[tuple[Path, str]]:
        """What no version needs: store directories of no listed version, and stale staging.

        Listed (and with ``remove``, deleted) while holding the index's write lock, so no publish
        is between renaming its directory into place and committing it.
        """
        found: list[tuple[Path, str]] = []
        with dbmod.write(self.db):
            found += [(directory, "not a listed version (left by an interrupted publish or rm)") for directory in self.unlisted_versions()]
            found += self._tmp_leftovers()
            if remove:
                for path, _ in found:
                    _remove(path)
        return found

    def _tmp_leftovers(self) -> list[tuple[Path, str]]:
        """What in tmp/ no live process uses: stale staging directories, and locks whose directory is gone."""
        found = []
        for path in sorted(self.tmp.iterdir()) if self.tmp.is_dir() else []:
            if path.suffix != ".lock" and self._stale(path):
                found.append((path, "a staging directory no live process uses"))
            elif path.suffix == ".lock" and self._orphan_lock(path):
                found.append((path, "the lock of a staging directory that is gone"))
        return found

    def _orphan_lock(self, path: Path) -> bool:
        """An old lock file whose staging directory is gone and that no process holds."""
        try:
            if Path(str(path)[: -len(".lock")]).exists() or path.lstat().st_mtime > time.time() - STALE_AFTER_S:
                return False
            with FileLock(path, timeout=0):
                return True
        except (FileNotFoundError, Timeout):
            return False

    def unlisted_versions(self) -> list[Path]:
        """Version directories in the store that the index does not list (a publish or rm cut short)."""
        listed = {(name, version) for name, version in self.db.execute("SELECT name, version FROM versions")}
        return [
            directory
            for directory in (sorted(self.store.glob("*/v*")) if self.store.is_dir() else [])
            if directory.is_dir() and directory.name[1:].isdigit() and (directory.parent.name, int(directory.name[1:])) not in listed
        ]

    def _stale(self, path: Path) -> bool:
        """Not modified for STALE_AFTER_S and its lock free: its process is gone."""
        try:
            if path.lstat().st_mtime > time.time() - STALE_AFTER_S:
                return False
        except FileNotFoundError:
            return False
        try:
            with FileLock(Path(f"{path}.lock"), timeout=0):
                return True
        except Timeout:
            return False  # still in use by a live process

    def _sweep_stale(self) -> None:
        for path, _ in self._tmp_leftovers():
            _remove(path)

    def publish(
        self,
        stage: Path,
        *,
        name: str,
        kind: str,
        base: str | None = None,
        strategy: str | None = None,
        dataset: dict | None = None,
        config: dict | None = None,
        metrics: dict | None = None,
        plugin_versions: dict | None = None,
        **extra,
    ) -> Entry:
        """Move a filled staging directory into the store as the next version of ``name``.

        Extra keyword arguments are kept in the manifest as they are (JSON-serialisable values).
        """
        validate_name(name)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        stage = Path(stage)
        if stage.parent != self.tmp:
            raise ValueError(f"{stage} is not a staging directory of this registry; use Registry.staging()")
        files = {}
        for rel in artifact_files(stage):
            if rel.as_posix() == MANIFEST:
                raise ValueError(f"{MANIFEST} is written by the registry, not by the artifact")
            fsync_file(stage / rel)
            files[rel.as_posix()] = {"sha256": sha256_file(stage / rel), "size": (stage / rel).stat().st_size}
        manifest: Manifest = {
            **extra,  # type: ignore[typeddict-item]
            "manifest_format": MANIFEST_FORMAT,
            "name": name,
            "kind": kind,
            "base": base,
            "strategy": strategy,
            "dataset": dataset,
            "config": config or {},
            "metrics": metrics or {},
            "files": files,
            "ftreg_version": __version__,
            "plugin_versions": plugin_versions or {},
        }
        if problems := manifest_problems(manifest):
            raise ArtifactError(f"not published: {'; '.join(problems[:3])}")
        json.dumps(manifest, allow_nan=False)  # fail before taking the write lock if something is not strict JSON
        for name_on_disk in files:
            if name_on_disk.endswith(".safetensors"):
                _check_safetensors(stage / name_on_disk)
        (self.store / name).mkdir(parents=True, exist_ok=True)

        with dbmod.write(self.db) as db:
            row = db.execute("SELECT next_version FROM names WHERE name = ?", (name,)).fetchone()
            version = row[0] if row else 1
            target = self.store / name / f"v{version}"
            if target.exists():
                # Left by a publisher killed between rename and commit: never visible, so safe to drop.
                self._discard(target)
            manifest.update({"version": version, "created_at": now()})
            write_json(stage / MANIFEST, manifest)
            fsync_file(stage / MANIFEST)
            os.rename(stage, target)
            try:
                fsync_dir(target.parent)
                db.execute("INSERT OR REPLACE INTO names VALUES (?, ?)", (name, version + 1))
                db.execute(
                    "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (name, version, kind, base, strategy, manifest["created_at"], json.dumps(manifest, sort_keys=True)),
                )
            except BaseException:
                os.rename(target, stage)  # the stage's owner cleans it up
                raise
        entry = self.resolve(Ref(name, version=version))
        plugins.call("version_published", entry=entry)
        return entry

    # -- changing ------------------------------------------------------------------------------

    def remove(self, ref: str, force: bool = False) -> Entry:
        """Remove a version. Refused while an alias points at it or another version names it as
        base or parent, unless ``force`` (those versions then show as orphaned in `problems`)."""
        with dbmod.write(self.db):
            entry = self.resolve(ref)
            if not force:
                if entry.aliases:
                    pointing = ", ".join(f"{entry.name}@{a}" for a in entry.aliases)
                    raise RegistryConflict(f"{entry.ref} is pointed at by {pointing}; move the alias first or pass `force`")
                if dependents := self.dependents(entry):
                    listed = ", ".join(f"{ref} ({how})" for ref, how in dependents[:10]) + (", ..." if len(dependents) > 10 else "")
                    raise RegistryConflict(f"{entry.ref} is needed by {len(dependents)} other version{'s' if len(dependents) != 1 else ''}: {listed}; remove them first or pass `force`")
            for alias in entry.aliases:
                self._record_alias(entry.name, alias, None)
            self.db.execute("DELETE FROM aliases WHERE name = ? AND version = ?", (entry.name, entry.version))
            self.db.execute("DELETE FROM versions WHERE name = ? AND version = ?", (entry.name, entry.version))
        # Files go only after the commit: a crash in between leaves an unlisted directory for
        # `ftreg gc`, never a listed version without its files.
        self._discard(entry.path)
        for alias in entry.aliases:
            plugins.call("alias_moved", name=entry.name, alias=alias, entry=None)
        plugins.call("version_removed", entry=entry)
        return entry

    def published_by_run(self, run_id: str) -> Entry | None:
        """The version training run ``run_id`` published, if any."""
        row = self.db.execute(f"SELECT name, version FROM versions WHERE {_json_field('run')} = ?", (run_id,)).fetchone()
        return self.resolve(Ref(row[0], version=row[1])) if row else None

    def dependents(self, entry: Entry) -> list[tuple[str, str]]:
        """The versions that name ``entry`` as their base or their parent: (ref, "base" or "parent")."""
        rows = self.db.execute(
            f"SELECT name, version, base = ?, {_json_field('parent')} = ? FROM versions"
            f" WHERE base = ? OR {_json_field('parent')} = ? ORDER BY name, version",
            (entry.ref,) * 4,
        )
        return [(f"{name}-v{version}", "base" if is_base else "parent") for name, version, is_base, _ in rows]

    def tag(self, ref: str, alias: str, evidence: dict[str, Any] | None = None) -> Entry:
        """Point ``name@alias`` at ``ref``'s version; ``evidence`` (what a gate compared) is kept in the alias history."""
        validate_name(alias, "alias")
        with dbmod.write(self.db):
            entry = self.resolve(ref)
            self.db.execute("INSERT OR REPLACE INTO aliases VALUES (?, ?, ?)", (entry.name, alias, entry.version))
            self._record_alias(entry.name, alias, entry.version, evidence)
        moved = self.resolve(Ref(entry.name, alias=alias))
        plugins.call("alias_moved", name=entry.name, alias=alias, entry=moved)
        return moved

    def _record_alias(self, name: str, alias: str, version: int | None, evidence: dict[str, Any] | None = None) -> None:
        self.db.execute(
            "INSERT INTO alias_history (name, alias, version, moved_at, moved_by, evidence) VALUES (?, ?, ?, ?, ?, ?)",
            (name, alias, version, now(), _user(), json.dumps(evidence) if evidence else None),
        )

    def _discard(self, path: Path) -> None:
        """Move a directory out of the store at once (a rename), then delete it."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        trash = self.tmp / f"trash-{uuid.uuid4().hex}"
        if path.exists():
            os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def untag(self, name: str, alias: str) -> Entry:
        """Remove ``name@alias``; the removal is kept in the alias history."""
        with dbmod.write(self.db):
            entry = self.resolve(Ref(validate_name(name), alias=validate_name(alias, "alias")))
            self.db.execute("DELETE FROM aliases WHERE name = ? AND alias = ?", (name, alias))
            self._record_alias(name, alias, None)
        plugins.call("alias_moved", name=name, alias=alias, entry=None)
        return entry

    def problems(self, entry: Entry) -> list[str]:
        """Every way the version differs from its record: its files, and the base and parent it names."""
        return self.file_problems(entry) + self.lineage_problems(entry)

    def file_problems(self, entry: Entry) -> list[str]:
        """Every way the version's files differ from what was recorded at publish: changed or missing
        files, files nobody recorded, and a manifest.json that is not the index's."""
        if "damaged" in entry.manifest:
            return [f"{entry.ref}: its index row is damaged ({entry.manifest['damaged']})"]  # type: ignore[typeddict-item]
        found = []
        if entry.path.is_dir():
            known = set(entry.manifest["files"]) | {MANIFEST}
            found += [f"{entry.ref}: file {rel.as_posix()} was not recorded at publish (added since?)" for rel in artifact_files(entry.path) if rel.as_posix() not in known]
            try:
                on_disk = json.loads((entry.path / MANIFEST).read_text())
            except (OSError, ValueError):
                on_disk = None
            if on_disk != entry.manifest:
                found.append(f"{entry.ref}: {MANIFEST} differs from the registry index's copy (edited or damaged)")
        for rel, recorded in sorted(entry.manifest["files"].items()):
            path = entry.path / rel
            if not path.is_file():
                found.append(f"{entry.ref}: file {rel} is missing from {entry.path}")
            elif path.stat().st_size != recorded["size"] or sha256_file(path) != recorded["sha256"]:
                found.append(f"{entry.ref}: file {rel} does not match its recorded sha256 (corrupted or modified)")
        return found

    def lineage_problems(self, entry: Entry) -> list[str]:
        """A registry base or a parent the version names that is no longer in the registry (orphaned)."""
        needed = []
        if entry.base and (entry.manifest.get("base_source") or {}).get("type") == "registry":
            needed.append(("base", entry.base))
        parent = entry.manifest.get("parent")
        if parent:
            needed.append(("parent", parent))
        return [f"{entry.ref}: orphaned: its {how} {ref} is no longer in the registry" for how, ref in needed if not self.exists(ref)]

    def verify_files(self, entry: Entry) -> None:
        """Raise ArtifactError, naming the first bad file, unless every file is as recorded."""
        if found := self.file_problems(entry):
            raise ArtifactError(found[0])

    # -- lineage -------------------------------------------------------------------------------

    def lineage(self, entry: Entry) -> list[str]:
        """This version, the version it re-ran or was pulled from, its base, and the base's own lineage."""
        return lineage.chain(self.resolve, entry)

    def differences(self, left: Entry, right: Entry) -> list[dict[str, Any]]:
        """Each lineage field, setting and metric that differs between two versions."""
        return lineage.differences(left, right)


def _remove(path: Path) -> None:
    """Delete a leftover directory or file, and the lock beside it."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    Path(f"{path}.lock").unlink(missing_ok=True)


def _settings_key(settings: dict[str, Any]) -> str:
    """Evaluation settings as the key they are stored under: the same settings, the same text."""
    return json.dumps(settings, sort_keys=True)


def _json_field(key: str) -> str:
    """SQL for one manifest field; a damaged row (not valid JSON) reads as NULL instead of failing the query."""
    return f"CASE WHEN json_valid(manifest) THEN json_extract(manifest, '$.{key}') END"


def _check_safetensors(path: Path) -> None:
    """A safetensors file whose header does not parse or whose offsets do not fit would crash every later load."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "numpy") as weights:
            weights.keys()
    except Exception as error:  # safetensors raises its own SafetensorError, and OSError kinds
        raise ArtifactError(f"{path.name} is not a valid safetensors file ({error}); not published") from error


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
