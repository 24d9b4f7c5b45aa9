"""The plugin host: one pluggy manager, built-in plugins, entry points, and broken-plugin isolation.

Built-in formats and strategies are ordinary plugins registered from ``DEFAULT_PLUGINS``;
third-party ones come from the ``ftreg`` entry-point group. ``FTREG_LOAD_PLUGINS`` restricts
third-party loading to a comma-separated allow-list of distribution names (empty: none).

A third-party plugin that raises on import or inside a hook is recorded in ``broken`` and
skipped, so one bad package never takes the CLI down; ``ftreg plugins`` shows the error.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import pluggy

from ftreg import __version__, hookspecs
from ftreg.errors import UnknownPlugin

ENTRY_POINT_GROUP = "ftreg"
DATASET_FORMAT = "dataset format"
TRAINING_STRATEGY = "training strategy"
DEFAULT_PLUGINS = (
    "ftreg.plugins.formats.instruction",
    "ftreg.plugins.formats.alpaca",
    "ftreg.plugins.formats.text",
    "ftreg.plugins.formats.csv_qa",
    "ftreg.plugins.formats.chat",
    "ftreg.plugins.strategies.lora8bit",
    "ftreg.plugins.strategies.full_fp16",
    "ftreg.plugins.strategies.scratch",
)

pm = pluggy.PluginManager("ftreg")
pm.add_hookspecs(hookspecs)

# plugin name -> "ExceptionType: message", for plugins that failed to import or to register.
broken: dict[str, str] = {}
_versions: dict[str, str] = {}
# (what, name) -> plugin name, e.g. ("training strategy", "lora8bit") -> "ftreg.plugins.strategies.lora8bit"
_providers: dict[tuple[str, str], str] = {}
_loaded = False


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str | None
    hooks: tuple[str, ...]
    error: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version, "hooks": list(self.hooks), "error": self.error}


def load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in DEFAULT_PLUGINS:
        # A failure here is a bug in ftreg itself, so it is not isolated.
        pm.register(importlib.import_module(module), name=module)
        _versions[module] = __version__
    allow = os.environ.get("FTREG_LOAD_PLUGINS")
    allowed = None if allow is None else {name.strip().lower() for name in allow.split(",") if name.strip()}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        if allowed is not None and (dist.name.lower() if dist else entry_point.name) not in allowed:
            continue
        _versions[entry_point.name] = dist.version if dist else None
        try:
            pm.register(entry_point.load(), name=entry_point.name)
        except Exception as error:  # noqa: BLE001 - isolating third-party code is the point
            broken[entry_point.name] = _describe(error)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _call_each(hook_name: str, arguments_for: Callable[[str], dict]) -> None:
    """Call every implementation of a hook on its own, so one raising plugin skips only itself.

    ``arguments_for(plugin_name)`` gives the hook's arguments for that plugin.
    """
    load_plugins()
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        if impl.plugin_name in broken:
            continue
        arguments = arguments_for(impl.plugin_name)
        try:
            impl.function(**{arg: arguments[arg] for arg in impl.argnames})
        except Exception as error:  # noqa: BLE001
            broken[impl.plugin_name] = _describe(error)


def _collect(hook_name: str, what: str) -> dict:
    found: dict = {}

    def register_for(plugin_name: str):
        def register(obj) -> None:
            if obj.name in found:
                raise ValueError(f"{what} {obj.name!r} is already registered by {_providers[(what, obj.name)]}")
            found[obj.name] = obj
            _providers[(what, obj.name)] = plugin_name

        return register

    _call_each(hook_name, lambda plugin_name: {"register": register_for(plugin_name)})
    return found


@functools.cache
def dataset_formats() -> dict:
    """Every registered dataset format, by name."""
    return _collect("register_dataset_formats", DATASET_FORMAT)


@functools.cache
def training_strategies() -> dict:
    """Every registered training strategy, by name."""
    return _collect("register_training_strategies", TRAINING_STRATEGY)


def get_dataset_format(name: str):
    return _lookup(dataset_formats(), name, DATASET_FORMAT)


def get_training_strategy(name: str):
    return _lookup(training_strategies(), name, TRAINING_STRATEGY)


def _lookup(found: dict, name: str, what: str):
    if name not in found:
        raise UnknownPlugin(f"unknown {what} {name!r}; available: {', '.join(sorted(found)) or 'none'}")
    return found[name]


def register_commands(cli) -> None:
    _call_each("register_commands", lambda plugin_name: {"cli": cli})


def provider(what: str, name: str) -> dict:
    """Which plugin registered the dataset format or training strategy ``name``, and its version."""
    plugin = _providers[(what, name)]
    return {"plugin": plugin, "version": _versions.get(plugin)}


def clear_caches() -> None:
    """Forget collected formats and strategies, e.g. after registering a plugin in a test."""
    dataset_formats.cache_clear()
    training_strategies.cache_clear()


def plugin_infos() -> list[PluginInfo]:
    """Every plugin, loaded or broken, after all registration hooks have run."""
    dataset_formats()
    training_strategies()
    infos = [
        PluginInfo(
            name=name,
            version=_versions.get(name),
            hooks=tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())),
            error=broken.get(name),
        )
        for name, plugin in pm.list_name_plugin()
    ]
    registered = {info.name for info in infos}
    infos += [PluginInfo(name, _versions.get(name), (), error) for name, error in broken.items() if name not in registered]
    return sorted(infos, key=lambda info: info.name)
