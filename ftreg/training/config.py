"""The effective training settings: defaults < the --from version's config < --config file < flags.

Shared settings are `TrainSpec` fields; a strategy's own options come from the --from version
(when it used the same strategy), the file's table named after the strategy (``[lora8bit]``),
and ``-o KEY=VALUE``, in that order, and are validated by the strategy's options class.
Settings recorded by an older ftreg are upgraded, with a warning for what no longer applies.
"""

from __future__ import annotations

import difflib
import sys
import warnings
from pathlib import Path
from typing import Any

from ftreg import plugins
from ftreg.contract import Entry, StrategyOptions, TrainingStrategy, TrainSpec
from ftreg.datasets.loading import dataset_fingerprint
from ftreg.errors import ConfigError

REQUIRED = ("strategy", "dataset", "name")
# Settings that were TrainSpec fields in ftreg 0.1 and now belong to one strategy's options:
# old key -> (strategy, option).
MOVED_TO_OPTIONS = {
    "lora_r": ("lora8bit", "r"),
    "lora_alpha": ("lora8bit", "alpha"),
    "lora_dropout": ("lora8bit", "dropout"),
    "patience": ("scratch", "patience"),
    "init": ("scratch", "init"),
}


class SettingsWarning(UserWarning):
    """A recorded setting could not be carried over (written by another ftreg version)."""


def moved_setting_message(key: str) -> str:
    strategy, name = MOVED_TO_OPTIONS[key]
    return f"{key!r} is now an option of the {strategy} strategy: use -o {name}=VALUE or set {name} in a [{strategy}] table of --config"


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML or YAML file of TrainSpec fields and one table of strategy options (`--print-config` writes one)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start})") from error
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
    except Exception as error:  # each parser has its own error type; the message says enough
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {error}".replace("\n", " ")) from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of settings, got {type(data).__name__}")
    strategies = plugins.training_strategies()
    for key, value in data.items():
        if key in MOVED_TO_OPTIONS:
            raise ConfigError(f"{path}: {moved_setting_message(key)}")
        if key == "options" or (key not in TrainSpec.field_names() and key not in strategies):
            names = [name for name in TrainSpec.field_names() if name != "options"]
            guess = difflib.get_close_matches(key, names + list(strategies), n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else " (a strategy's options go in a table named after it, e.g. [lora8bit])"
            raise ConfigError(f"{path}: unknown setting {key!r}{hint}")
        if key in strategies and not isinstance(value, dict):
            raise ConfigError(f"{path}: {key!r} must be a table of the {key} strategy's options")
    return data


def effective_spec(
    flags: dict[str, Any],
    options: dict[str, Any] | None = None,
    config_file: Path | None = None,
    parent: Entry | None = None,
) -> TrainSpec:
    """The settings of a run: shared settings and the strategy's options, merged and validated."""
    settings: dict[str, Any] = {}
    merged_options: dict[str, Any] = {}
    if parent is not None:
        recorded = upgrade_settings(parent.config, f"{parent.ref}'s recorded settings")
        merged_options.update(recorded.pop("options", {}))
        settings.update(recorded)
        settings.setdefault("name", parent.name)
    file_tables: dict[str, dict[str, Any]] = {}
    file_settings: dict[str, Any] = {}
    if config_file is not None:
        for key, value in read_config_file(config_file).items():
            if key in TrainSpec.field_names():
                file_settings[key] = value
            else:
                file_tables[key] = value
    settings.update(file_settings)
    if "options" in flags:
        raise ConfigError("a strategy's options are passed on their own (`options`), not among the shared settings")
    settings.update(flags)
    missing = [key for key in REQUIRED if not settings.get(key)]
    if missing:
        raise ConfigError(f"missing setting {', '.join(missing)}: pass `{missing[0]}` or set {missing[0]!r} in the config file")
    if parent is not None and parent.config.get("strategy") != settings["strategy"]:
        merged_options.clear()  # another strategy's options mean nothing to this one
    for table, values in file_tables.items():
        if table != settings["strategy"]:
            raise ConfigError(f"{config_file}: the [{table}] table sets options of strategy {table!r}, but the strategy is {settings['strategy']!r}")
        merged_options.update(values)
    merged_options.update(options or {})
    spec = _spec(settings | {"options": merged_options})
    if parent is not None and "dataset" not in flags and "dataset" not in file_settings:
        _check_unchanged(parent, spec.dataset)
    return with_strategy_options(spec)[0]


def _check_unchanged(parent: Entry, source: str) -> None:
    """Re-running a version on its recorded dataset must read the same bytes it recorded."""
    recorded = (parent.manifest.get("dataset") or {}).get("fingerprint")
    if recorded and dataset_fingerprint(source) != recorded:
        raise ConfigError(
            f"{source} has changed since {parent.ref} was trained on it (it recorded {recorded[:19]}...); "
            f"to train on the new content, pass it explicitly as `dataset`"
        )


def with_strategy_options(spec: TrainSpec) -> tuple[TrainSpec, TrainingStrategy, StrategyOptions]:
    """The spec with every option of its strategy filled in (so the record lists what was applied),
    the strategy, and its validated options."""
    strategy = plugins.get_training_strategy(spec.strategy)
    options = strategy.options(spec)
    return spec.replace(options=options.to_dict()), strategy, options


def upgrade_settings(recorded: dict[str, Any], where: str) -> dict[str, Any]:
    """Settings recorded by any ftreg version (a manifest's config, a run record), as today's TrainSpec takes them.

    Keys that moved into a strategy's options move there when that strategy recorded them; a key
    no longer known is dropped with a SettingsWarning naming it, never a traceback.
    """
    settings = {key: value for key, value in recorded.items() if key in TrainSpec.field_names()}
    options = dict(settings.get("options") or {})
    for key, value in recorded.items():
        if key in settings:
            continue
        if key in MOVED_TO_OPTIONS:
            strategy, name = MOVED_TO_OPTIONS[key]
            if recorded.get("strategy") == strategy:
                options.setdefault(name, value)
            continue  # an older ftreg recorded it for every strategy; the others never used it
        warnings.warn(f"{where}: unknown setting {key!r} ignored (written by another ftreg version)", SettingsWarning, stacklevel=2)
    if options:
        settings["options"] = options
    if "precision" not in recorded and recorded.get("strategy"):
        # Before `precision` was a setting, full-fp16 chose FP16 on CUDA (and fp32 elsewhere), as auto
        # still does on CUDA; every other strategy computed in fp32.
        settings["precision"] = "auto" if recorded["strategy"] == "full-fp16" else "fp32"
    return settings


def _spec(settings: dict[str, Any]) -> TrainSpec:
    try:
        return TrainSpec.from_dict(settings)
    except TypeError as error:
        raise ConfigError(f"invalid settings: {error}") from error


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli

    return tomli
