"""Names and references.

A reference is one of:

- ``support-v2``: version 2 of ``support``;
- ``support``: its newest version;
- ``support@prod``: whatever the alias ``prod`` of ``support`` points at.

Names may not themselves end in ``-v<digits>``, so ``support-v2`` is never ambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ftreg.errors import InvalidName

_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")
_VERSIONED = re.compile(r"(?P<name>.+)-v(?P<version>[0-9]+)")
MAX_VERSION = 2**63 - 1  # SQLite's largest integer
NAME_RULE = "lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 64 characters"


def validate_name(name: str, what: str = "name") -> str:
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidName(f"invalid {what} {name!r}: use {NAME_RULE}")
    if _VERSIONED.fullmatch(name):
        raise InvalidName(f"invalid {what} {name!r}: it may not end in '-v<number>', which marks a version")
    return name


@dataclass(frozen=True)
class Ref:
    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}-v{self.version}"
        return self.name


def parse_ref(text: str) -> Ref:
    if "@" in text:
        name, _, alias = text.partition("@")
        return Ref(validate_name(name), alias=validate_name(alias, "alias"))
    versioned = _VERSIONED.fullmatch(text)
    if versioned:
        version = int(versioned["version"])
        if version > MAX_VERSION:
            raise InvalidName(f"invalid reference {text!r}: version numbers go up to {MAX_VERSION}")
        return Ref(validate_name(versioned["name"]), version=version)
    return Ref(validate_name(text))
