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
from dataclasses import dataclass
from importlib import metadata

import pluggy

from ftreg import __version__, hookspecs
from ftreg.errors import UnknownPlugin

ENTRY_POINT_GROUP = "ftreg"
DEFAULT_PLUGINS = (
    "ftreg.plugins.formats.instruction",
    "ftreg.plugins.strategies.lora8bit",
)

pm = pluggy.PluginManager("ftreg")
pm.add_hookspecs(hookspecs)

# plugin name -> "ExceptionType: message", for plugins that failed to import or to register.
broken: dict[str, str] = {}
_versions: dict[str, str] = {}
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


def _call_each(hook_name: str, **kwargs) -> None:
    """Call every implementation of a hook on its own, so one raising plugin skips only itself."""
    load_plugins()
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        if impl.plugin_name in broken:
            continue
        try:
            impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except Exception as error:  # noqa: BLE001
            broken[impl.plugin_name] = _describe(error)


def _collect(hook_name: str, what: str) -> dict:
    found: dict = {}

    def register(obj) -> None:
        if obj.name in found:
            raise ValueError(f"{what} {obj.name!r} is already registered")
        found[obj.name] = obj

    _call_each(hook_name, register=register)
    return found


@functools.cache
def dataset_formats() -> dict:
    """Every registered dataset format, by name."""
    return _collect("register_dataset_formats", "dataset format")


@functools.cache
def training_strategies() -> dict:
    """Every registered training strategy, by name."""
    return _collect("register_training_strategies", "training strategy")


def get_dataset_format(name: str):
    return _lookup(dataset_formats(), name, "dataset format")


def get_training_strategy(name: str):
    return _lookup(training_strategies(), name, "training strategy")


def _lookup(found: dict, name: str, what: str):
    if name not in found:
        raise UnknownPlugin(f"unknown {what} {name!r}; available: {', '.join(sorted(found)) or 'none'}")
    return found[name]


def register_commands(cli) -> None:
    _call_each("register_commands", cli=cli)


def plugin_version(obj) -> str | None:
    """The version of the plugin that defines ``obj`` (a format or strategy), for the manifest."""
    module = type(obj).__module__
    for name, plugin in pm.list_name_plugin():
        if getattr(plugin, "__name__", None) == module or name == module:
            return _versions.get(name)
    return None


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
