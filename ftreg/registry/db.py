"""The SQLite index: one connection per Registry, WAL, and explicit write transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ftreg.errors import RegistryError
from ftreg.registry import migrations

BUSY_TIMEOUT_MS = 60_000


def connect(path: Path) -> sqlite3.Connection:
    """The index at ``path``, created or migrated as needed; another program's or a damaged database is refused."""
    if path.exists() and not path.is_file():
        raise RegistryError(f"{path} is not a file; a registry's index is an SQLite file")
    try:
        # isolation_level=None: we issue BEGIN ourselves, so every write is one explicit transaction.
        db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        tables = sorted(name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        if tables and "_migrations" not in tables:
            db.close()
            raise RegistryError(f"{path} is another program's SQLite database (tables: {', '.join(tables[:5])}), not an ftreg registry; choose another registry directory")
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        if not migrations.is_current(db):
            with write(db):
                migrations.migrate(db)
    except sqlite3.DatabaseError as error:  # not a database, truncated, read-only, disk full, ...
        raise RegistryError(f"{path}: the registry index cannot be used: {error}") from error
    return db


@contextmanager
def write(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the lock up front, so concurrent writers queue instead of failing."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
