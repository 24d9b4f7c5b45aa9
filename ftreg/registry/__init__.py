"""Versioned store of adapters and checkpoints: an SQLite index plus one immutable directory per version."""

from ftreg.contract.manifest import Entry
from ftreg.contract.names import Ref, parse_ref, validate_name
from ftreg.registry.store import Registry, default_home

__all__ = ["Entry", "Ref", "Registry", "default_home", "parse_ref", "validate_name"]
