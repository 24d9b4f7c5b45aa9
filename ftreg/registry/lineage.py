"""Where a version came from, and how two versions differ."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ftreg.contract.manifest import Entry
from ftreg.errors import FtregError


def flat_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Shared settings as they are, and each strategy option as ``options.KEY``."""
    flat = {key: value for key, value in config.items() if key != "options"}
    flat.update({f"options.{key}": value for key, value in (config.get("options") or {}).items()})
    return flat


def chain(resolve: Callable[[str], Entry], entry: Entry | None) -> list[str]:
    """This version, the version it re-ran (--from) or was pulled from, then its base, and the base's own lineage."""
    links, seen = [], set()
    while entry is not None and entry.ref not in seen:
        seen.add(entry.ref)
        m = entry.manifest
        origin = f" (from {m['parent']})" if m.get("parent") else ""
        if m.get("hub"):
            origin += f" (pulled from {m['hub']['repo_id']}@{m['hub']['commit'][:12]})"
        links.append(f"{entry.ref} [{entry.strategy or entry.kind}]{origin}")
        base = entry.base
        if not base:
            break
        try:
            entry = resolve(base)
        except FtregError:  # a Hub id or a directory: the chain leaves the registry here
            links.append(base)
            break
    return links


def differences(left: Entry, right: Entry) -> list[dict[str, Any]]:
    """Each lineage field, setting and metric that differs: {"key", <left ref>: value, <right ref>: value}."""
    found = []
    for section, values in (("", _lineage_fields), ("config.", lambda e: flat_settings(e.config)), ("metrics.", lambda e: e.metrics)):
        one, two = values(left), values(right)
        for key in sorted(set(one) | set(two)):
            if one.get(key) != two.get(key):
                found.append({"key": section + key, left.ref: one.get(key), right.ref: two.get(key)})
    return found


def _lineage_fields(entry: Entry) -> dict[str, Any]:
    m = entry.manifest
    return {
        "kind": entry.kind,
        "base": entry.base,
        "base_fingerprint": m.get("base_fingerprint"),
        "strategy": entry.strategy,
        "dataset": (m.get("dataset") or {}).get("fingerprint"),
        "format": (m.get("dataset") or {}).get("format"),
        "parent": m.get("parent"),
    }
