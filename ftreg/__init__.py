"""ftreg: a registry of fine-tuned GPT-2 adapters and checkpoints, extended by plugins.

The public API (docs/python-api.md) is what this module exports; the command line uses nothing
else. Importing ftreg is cheap: nothing here loads torch or transformers.
"""

from ftreg.api import (
    add_plugin_commands,
    check_dataset,
    dataset_formats,
    export,
    gc,
    init_base,
    load,
    plugin_infos,
    pull,
    push,
    resume,
    runs,
    settings,
    train,
    training_strategies,
)
from ftreg.contract import Entry, Ref, StrategyOptions, TrainingStrategy, TrainSpec, option, parse_ref
from ftreg.errors import (
    ArtifactError,
    BaseMismatch,
    ConfigError,
    DatasetError,
    FtregError,
    InvalidName,
    PluginWarning,
    RegistryConflict,
    RegistryError,
    TrainingDiverged,
    UnknownPlugin,
    UnknownReference,
)
from ftreg.hookspecs import hookimpl
from ftreg.inference.compose import Composed, GenerationOptions
from ftreg.registry import Registry
from ftreg.training.config import MOVED_TO_OPTIONS, SettingsWarning
from ftreg.training.runs import Run
from ftreg.version import __version__

__all__ = [
    "MOVED_TO_OPTIONS",
    "ArtifactError",
    "BaseMismatch",
    "Composed",
    "ConfigError",
    "DatasetError",
    "Entry",
    "FtregError",
    "GenerationOptions",
    "InvalidName",
    "PluginWarning",
    "Ref",
    "Registry",
    "RegistryConflict",
    "RegistryError",
    "Run",
    "SettingsWarning",
    "StrategyOptions",
    "TrainSpec",
    "TrainingDiverged",
    "TrainingStrategy",
    "UnknownPlugin",
    "UnknownReference",
    "__version__",
    "add_plugin_commands",
    "check_dataset",
    "dataset_formats",
    "export",
    "gc",
    "hookimpl",
    "init_base",
    "load",
    "option",
    "parse_ref",
    "plugin_infos",
    "pull",
    "push",
    "resume",
    "runs",
    "settings",
    "train",
    "training_strategies",
]
