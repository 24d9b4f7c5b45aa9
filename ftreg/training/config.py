"""The effective training settings: defaults < the --from version's config < --config file < flags."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from ftreg.errors import ConfigError
from ftreg.registry import Entry
from ftreg.training.spec import TrainSpec

REQUIRED = ("strategy", "dataset", "name")


def read_config_file(path: Path) -> dict:
    """A TOML or YAML file whose keys are TrainSpec fields (`ftreg train --print-config` writes one)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error
    try:
        if path.suffix == ".toml":
            data = _toml().loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"{path}: use a .toml, .yaml or .yml file")
    except ConfigError:
        raise
    except Exception as error:  # noqa: BLE001 - each parser has its own error type; the message says enough
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {error}".replace("\n", " ")) from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of settings, got {type(data).__name__}")
    for key in data:
        if key not in TrainSpec.field_names():
            guess = difflib.get_close_matches(key, TrainSpec.field_names(), n=1)
            raise ConfigError(f"{path}: unknown setting {key!r}" + (f" (did you mean {guess[0]!r}?)" if guess else ""))
    return data


def effective_spec(flags: dict, config_file: Path | None = None, parent: Entry | None = None) -> TrainSpec:
    settings: dict = {}
    if parent is not None:
        settings.update({k: v for k, v in parent.config.items() if k in TrainSpec.field_names()})
        settings.setdefault("name", parent.name)
    if config_file is not None:
        settings.update(read_config_file(config_file))
    settings.update(flags)
    missing = [key for key in REQUIRED if not settings.get(key)]
    if missing:
        raise ConfigError(f"missing setting {', '.join(missing)}: pass --{missing[0]} or set {missing[0]!r} in --config")
    try:
        return TrainSpec(**settings)
    except TypeError as error:  # a wrongly typed value from a file, e.g. columns = "x"
        raise ConfigError(f"invalid settings: {error}") from error


def to_toml(spec: TrainSpec) -> str:
    import tomli_w

    return tomli_w.dumps({key: value for key, value in spec.to_dict().items() if value is not None})  # TOML has no null


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli

    return tomli


