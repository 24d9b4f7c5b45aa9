"""Versioned store of adapters and checkpoints."""

from ftreg.registry.entry import Entry
from ftreg.registry.names import Ref, parse_ref, validate_name
from ftreg.registry.store import Registry, default_home

__all__ = ["Entry", "Ref", "Registry", "default_home", "parse_ref", "validate_name"]
