"""ftreg: a registry of fine-tuned GPT-2 adapters and checkpoints, extended by plugins.

The public API (docs/python-api.md) is what this module exports; the command line uses nothing
else. Each name is imported from its home on first use (PEP 562), so ``import ftreg`` is cheap
and a command pays only for the parts it touches; nothing here loads torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ftreg.version import __version__

# name -> (module, attribute)
_EXPORTS = {
    **{name: ("ftreg.api", name) for name in (
        "check_dataset", "compare", "evaluate", "export", "gc", "init_base", "load", "prompter", "pull", "push", "resume", "runs", "serve",
        "settings", "tag_if_better", "train",
    )},
    **{name: ("ftreg.plugins", name) for name in ("dataset_formats", "dataset_sources", "plugin_infos", "training_strategies")},
    "add_plugin_commands": ("ftreg.plugins", "register_commands"),
    **{name: ("ftreg.contract", name) for name in ("Entry", "Metric", "Ref", "StrategyOptions", "TrainingStrategy", "TrainSpec", "option", "parse_ref")},
    **{name: ("ftreg.errors", name) for name in (
        "ArtifactError", "BaseMismatch", "ConfigError", "DatasetError", "FtregError", "InvalidName", "PluginWarning",
        "RegistryConflict", "RegistryError", "TrainingDiverged", "UnknownPlugin", "UnknownReference",
    )},
    "hookimpl": ("ftreg.hookspecs", "hookimpl"),
    "show_everything": ("ftreg.engines.quiet", "show_everything"),
    "Composed": ("ftreg.inference.compose", "Composed"),
    "comparison_table": ("ftreg.evaluation.text", "render_text"),
    "comparison_html": ("ftreg.evaluation.html", "render_html"),
    "GenerationOptions": ("ftreg.inference.options", "GenerationOptions"),
    "Prompter": ("ftreg.inference.prompts", "Prompter"),
    "Registry": ("ftreg.registry", "Registry"),
    "MOVED_TO_OPTIONS": ("ftreg.training.config", "MOVED_TO_OPTIONS"),
    "SettingsWarning": ("ftreg.training.config", "SettingsWarning"),
    "Run": ("ftreg.training.runs", "Run"),
}

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
    "Metric",
    "PluginWarning",
    "Prompter",
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
    "compare",
    "comparison_html",
    "comparison_table",
    "dataset_formats",
    "dataset_sources",
    "evaluate",
    "export",
    "gc",
    "hookimpl",
    "init_base",
    "load",
    "option",
    "parse_ref",
    "plugin_infos",
    "prompter",
    "pull",
    "push",
    "resume",
    "runs",
    "serve",
    "settings",
    "show_everything",
    "tag_if_better",
    "train",
    "training_strategies",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ftreg' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from ftreg.api import (
        check_dataset,
        compare,
        evaluate,
        export,
        gc,
        init_base,
        load,
        prompter,
        pull,
        push,
        resume,
        runs,
        serve,
        settings,
        tag_if_better,
        train,
    )
    from ftreg.contract import Entry, Metric, Ref, StrategyOptions, TrainingStrategy, TrainSpec, option, parse_ref
    from ftreg.engines.quiet import show_everything
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
    from ftreg.evaluation.html import render_html as comparison_html
    from ftreg.evaluation.text import render_text as comparison_table
    from ftreg.hookspecs import hookimpl
    from ftreg.inference.compose import Composed
    from ftreg.inference.options import GenerationOptions
    from ftreg.inference.prompts import Prompter
    from ftreg.plugins import dataset_formats, dataset_sources, plugin_infos, training_strategies
    from ftreg.plugins import register_commands as add_plugin_commands
    from ftreg.registry import Registry
    from ftreg.training.config import MOVED_TO_OPTIONS, SettingsWarning
    from ftreg.training.runs import Run
