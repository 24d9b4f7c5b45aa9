"""Append-only schema migrations for the registry index.

Never edit or reorder a migration that has shipped: add a new function at the end.
Each runs once, inside the write transaction that records it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []


def migration(fn: Callable[[sqlite3.Connection], None]):
    MIGRATIONS.append(fn)
    return fn


def migrate(db: sqlite3.Connection) -> None:
    """Apply pending migrations; the caller holds a write transaction."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    for fn in MIGRATIONS:
        if fn.__name__ not in applied:
            fn(db)
            db.execute("INSERT INTO _migrations VALUES (?, datetime('now'))", (fn.__name__,))


def is_current(db: sqlite3.Connection) -> bool:
    try:
        applied = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    except sqlite3.OperationalError:
        return False
    return applied >= {fn.__name__ for fn in MIGRATIONS}


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    # `names.next_version` makes version numbers never reused, even after `rm` of the newest.
    db.execute("CREATE TABLE names (name TEXT PRIMARY KEY, next_version INTEGER NOT NULL)")
    db.execute(
        """CREATE TABLE versions (
            name TEXT NOT NULL REFERENCES names(name),
            version INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('adapter', 'checkpoint')),
            base TEXT,
            strategy TEXT,
            created_at TEXT NOT NULL,
            manifest TEXT NOT NULL,
            PRIMARY KEY (name, version)
        )"""
    )
    db.execute(
        """CREATE TABLE aliases (
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (name, alias),
            FOREIGN KEY (name, version) REFERENCES versions(name, version)
        )"""
    )
    # Every alias move is kept; version NULL means the alias was removed.
    db.execute(
        """CREATE TABLE alias_history (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            version INTEGER,
            moved_at TEXT NOT NULL,
            moved_by TEXT NOT NULL
        )"""
    )


@migration
def m002_evaluations(db: sqlite3.Connection) -> None:
    # Results live in the index, not in the version's immutable directory: evaluating never
    # changes a version's files or hashes. One row per version, data and settings, so a repeated
    # evaluation is a lookup. `answers` keeps the greedy answers, so a metric added later is
    # scored without generating again.
    db.execute(
        """CREATE TABLE evaluations (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            settings TEXT NOT NULL,
            dataset TEXT NOT NULL,
            results TEXT NOT NULL,
            answers TEXT NOT NULL,
            evaluated_at TEXT NOT NULL,
            PRIMARY KEY (name, version, fingerprint, settings),
            FOREIGN KEY (name, version) REFERENCES versions(name, version) ON DELETE CASCADE
        )"""
    )
    # What a gated move compared (JSON), so the history says why the alias moved.
    db.execute("ALTER TABLE alias_history ADD COLUMN evidence TEXT")
