"""The plugin host: one pluggy manager, the built-in plugins, entry points, and per-hook isolation.

Built-in formats, sources and strategies are ordinary plugins (``ftreg.default_plugins``);
third-party ones come from the ``ftreg`` entry-point group. ``FTREG_LOAD_PLUGINS`` restricts
third-party loading to a comma-separated allow-list (distribution or plugin names; empty: none).
``FTREG_TRACE_PLUGINS=1`` prints every hook call and its implementations to stderr.

Implementations are called in pluggy's order (newest registered first, honouring ``tryfirst`` and
``trylast``), each on its own: one that raises loses only that call. A registration hook's
contributions from the failed call are dropped and the failure is shown by ``ftreg plugins``; an
event hook's failure becomes a warning that names the plugin. Hook wrappers are refused: a
wrapper sees the other implementations' errors, which is exactly what isolation hides.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

import pluggy

from ftreg import hookspecs
from ftreg.contract import DatasetFormat, DatasetSource, Metric, TrainingStrategy
from ftreg.errors import PluginWarning, UnknownPlugin
from ftreg.version import __version__

ENTRY_POINT_GROUP = "ftreg"
# The hook interface a plugin is written against. A plugin may say which it needs with a module
# (or object) attribute ``FTREG_PLUGIN_API``; one written for another is skipped with a warning.
PLUGIN_API = 1
DATASET_FORMAT = "dataset format"
DATASET_SOURCE = "dataset source"
TRAINING_STRATEGY = "training strategy"
METRIC = "metric"
DEFAULT_PLUGINS = (
    "ftreg.default_plugins.formats.instruction",
    "ftreg.default_plugins.formats.alpaca",
    "ftreg.default_plugins.formats.text",
    "ftreg.default_plugins.formats.csv_qa",
    "ftreg.default_plugins.formats.chat",
    "ftreg.default_plugins.formats.sharegpt",
    "ftreg.default_plugins.formats.prompt_completion",
    "ftreg.default_plugins.sources",
    "ftreg.default_plugins.metrics",
    "ftreg.default_plugins.strategies.lora8bit",
    "ftreg.default_plugins.strategies.full_fp16",
    "ftreg.default_plugins.strategies.scratch",
)

pm = pluggy.PluginManager("ftreg")
pm.add_hookspecs(hookspecs)

# plugin name -> {hook name (or "import"): "ExceptionType: message"}
failures: dict[str, dict[str, str]] = {}
_versions: dict[str, str | None] = {}
# (what, name) -> plugin name, e.g. ("training strategy", "lora8bit") -> "ftreg.default_plugins.strategies.lora8bit"
_providers: dict[tuple[str, str], str] = {}
# (what, name) -> the broken plugin that registered it: asking for it names that plugin
_broken_providers: dict[tuple[str, str], str] = {}
_loaded = False

T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str | None
    hooks: tuple[str, ...]
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "hooks": list(self.hooks), "error": self.error}


def load_plugins() -> None:
    """Register the built-ins and every allowed entry-point plugin, once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in DEFAULT_PLUGINS:
        # A failure here is a bug in ftreg itself, so it is not isolated.
        register(importlib.import_module(module), module, __version__)
    allow = os.environ.get("FTREG_LOAD_PLUGINS")
    allowed = None if allow is None else {_normalized(name) for name in allow.split(",") if name.strip()}
    matched: set[str] = set()
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        names = {_normalized(entry_point.name), *([_normalized(dist.name)] if dist else [])}
        if allowed is not None:
            if not names & allowed:
                continue
            matched |= names & allowed
        _versions[entry_point.name] = dist.version if dist else None
        try:
            plugin = entry_point.load()
        except Exception as error:  # noqa: BLE001 - isolating third-party code is the point
            failures.setdefault(entry_point.name, {})["import"] = _describe(error)
            continue
        api = getattr(plugin, "FTREG_PLUGIN_API", PLUGIN_API)
        if api != PLUGIN_API:
            failures.setdefault(entry_point.name, {})["skipped"] = f"written for plugin API {api}; this ftreg has {PLUGIN_API}"
            warnings.warn(f"plugin {entry_point.name} is skipped: written for plugin API {api}; this ftreg has {PLUGIN_API}", PluginWarning, stacklevel=2)
            continue
        try:
            register(plugin, entry_point.name, dist.version if dist else None)
        except Exception as error:  # noqa: BLE001 - a bad hookimpl
            failures.setdefault(entry_point.name, {})["import"] = _describe(error)
    for stray in sorted((allowed or set()) - matched):
        warnings.warn(f"FTREG_LOAD_PLUGINS names {stray}, which no installed plugin is (its distribution or plugin name)", PluginWarning, stacklevel=2)


def _normalized(name: str) -> str:
    """A distribution or plugin name as pip compares them: case, '-', '_' and '.' do not matter."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def register(plugin: object, name: str, version: str | None = None) -> None:
    """Register one plugin object or module; a plugin with hook wrappers is refused and recorded."""
    pm.register(plugin, name=name)
    _versions[name] = version
    wrappers = sorted(caller.name for caller in pm.get_hookcallers(plugin) or () for impl in caller.get_hookimpls() if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper))
    if wrappers:
        pm.unregister(plugin)
        failures.setdefault(name, {})["register"] = f"PluginValidationError: hook wrappers are not supported ({', '.join(wrappers)})"
    clear_caches()


def unregister(name: str) -> None:
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)
    failures.pop(name, None)
    _versions.pop(name, None)
    clear_caches()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _trace(message: str) -> None:
    if os.environ.get("FTREG_TRACE_PLUGINS"):
        print(f"ftreg trace: {message}", file=sys.stderr)


def call(hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call each implementation of a hook on its own, in pluggy's order; returns (plugin, result) pairs.

    An implementation that raises is skipped: for a ``register_*`` hook the failure is recorded
    against the plugin and hook (see ``ftreg plugins``), for any other hook it is a PluginWarning.
    """
    load_plugins()
    caller = getattr(pm.hook, hook_name)
    implementations = list(reversed(caller.get_hookimpls()))  # pluggy calls the newest first
    _trace(f"{hook_name}({', '.join(kwargs)}) -> [{', '.join(impl.plugin_name for impl in implementations)}]")
    results = []
    for impl in implementations:
        try:
            result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except Exception as error:  # noqa: BLE001 - one plugin's failure must not stop the others
            _trace(f"  {impl.plugin_name}: {_describe(error)}")
            if hook_name.startswith("register_"):
                failures.setdefault(impl.plugin_name, {})[hook_name] = _describe(error)
            else:
                warnings.warn(f"plugin {impl.plugin_name} failed in {hook_name}: {_describe(error)}", PluginWarning, stacklevel=2)
            continue
        _trace(f"  {impl.plugin_name}: ok")
        results.append((impl.plugin_name, result))
    return results


def first_result(hook_name: str, **kwargs: Any) -> Any:
    """The first non-None answer of a ``firstresult`` hook, in pluggy's order; failures warn and are skipped."""
    load_plugins()
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):
        try:
            result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except Exception as error:  # noqa: BLE001
            _trace(f"{hook_name}: {impl.plugin_name}: {_describe(error)}")
            warnings.warn(f"plugin {impl.plugin_name} failed in {hook_name}: {_describe(error)}", PluginWarning, stacklevel=2)
            continue
        _trace(f"{hook_name}: {impl.plugin_name} -> {result!r}")
        if result is not None:
            return result
    return None


# Each registration hook, and what it registers.
REGISTRATIONS = {
    "register_dataset_formats": DATASET_FORMAT,
    "register_dataset_sources": DATASET_SOURCE,
    "register_training_strategies": TRAINING_STRATEGY,
    "register_metrics": METRIC,
}


@functools.cache
def _registered() -> dict[str, dict[str, Any]]:
    """Everything the registration hooks register, by hook and then by name, from whole plugins only.

    A plugin that failed anywhere (on import, in any registration hook, or by registering a name
    another plugin has) is broken as a whole: none of its registrations count, and what it did
    register is remembered so that asking for it names the broken plugin. Plugins are asked in
    pluggy's order (the most recently registered first), which decides between two plugins that
    register one name; no plugin can take a built-in's name, since built-ins are merged first.
    """
    load_plugins()
    per_hook: dict[str, dict[str, list[Any]]] = {hook: {} for hook in REGISTRATIONS}
    for hook_name, per_plugin in per_hook.items():
        for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
            # Each implementation gets its own register function, so what it adds is attributable.
            per_plugin[impl.plugin_name] = []
            _call_one(hook_name, impl, per_plugin[impl.plugin_name])
    while True:  # a name conflict breaks a plugin, which can free a name another plugin lost
        found: dict[str, dict[str, Any]] = {hook: {} for hook in REGISTRATIONS}
        conflicts = 0
        for hook_name, what in REGISTRATIONS.items():
            per_plugin = per_hook[hook_name]
            for plugin_name in sorted(per_plugin, key=lambda name: name not in DEFAULT_PLUGINS):
                if plugin_name in failures:
                    for obj in per_plugin[plugin_name]:
                        _broken_providers.setdefault((what, obj.name), plugin_name)
                    continue
                taken = [obj.name for obj in per_plugin[plugin_name] if obj.name in found[hook_name]]
                if taken:
                    owner = _providers[(what, taken[0])]
                    failures.setdefault(plugin_name, {})[hook_name] = f"ValueError: {what} {taken[0]!r} is already registered by {owner}"
                    conflicts += 1
                    continue
                for obj in per_plugin[plugin_name]:
                    found[hook_name][obj.name] = obj
                    _providers[(what, obj.name)] = plugin_name
        if not conflicts:
            return found


def _call_one(hook_name: str, impl: Any, registered: list[Any]) -> None:
    def register_one(obj: Any) -> None:
        if any(other.name == obj.name for other in registered):
            raise ValueError(f"{obj.name!r} is registered twice")
        registered.append(obj)

    _trace(f"{hook_name}(register) -> {impl.plugin_name}")
    try:
        impl.function(**{arg: register_one for arg in impl.argnames})
    except Exception as error:  # noqa: BLE001
        _trace(f"  {impl.plugin_name}: {_describe(error)}")
        failures.setdefault(impl.plugin_name, {})[hook_name] = _describe(error)


def dataset_formats() -> dict[str, DatasetFormat]:
    """Every registered dataset format, by name."""
    return _registered()["register_dataset_formats"]


def dataset_sources() -> dict[str, DatasetSource]:
    """Every registered dataset source, by name, in the order they are asked (plugins before built-ins)."""
    found = _registered()["register_dataset_sources"]
    return dict(sorted(found.items(), key=lambda item: _providers[(DATASET_SOURCE, item[0])] in DEFAULT_PLUGINS))


def training_strategies() -> dict[str, TrainingStrategy]:
    """Every registered training strategy, by name."""
    return _registered()["register_training_strategies"]


def metrics() -> dict[str, Metric]:
    """Every registered generation metric, by name."""
    return _registered()["register_metrics"]


def broken_plugins() -> dict[str, str]:
    """Every plugin that is not in use, by name, with why."""
    _registered()
    return {name: _failure_text(name) for name in sorted(failures)}


def _failure_text(name: str) -> str:
    return "; ".join(message if hook in ("import", "register") else f"{hook}: {message}" for hook, message in failures[name].items())


def get_dataset_format(name: str) -> DatasetFormat:
    return _lookup(dataset_formats(), name, DATASET_FORMAT)


def get_training_strategy(name: str) -> TrainingStrategy:
    return _lookup(training_strategies(), name, TRAINING_STRATEGY)


def _lookup(found: dict[str, T], name: str, what: str) -> T:
    if name not in found:
        owner = _broken_providers.get((what, name))
        if owner in failures:
            raise UnknownPlugin(f"{what} {name!r} comes from plugin {owner}, which is broken ({_failure_text(owner)}); fix or uninstall it")
        raise UnknownPlugin(f"unknown {what} {name!r}; available: {', '.join(sorted(found)) or 'none'}")
    return found[name]


def register_commands(cli: Any) -> None:
    """Add the commands of every whole plugin; one whose command hook fails is broken from then on."""
    broken = set(broken_plugins())
    for impl in reversed(pm.hook.register_commands.get_hookimpls()):
        if impl.plugin_name in broken:
            continue
        try:
            impl.function(**{arg: cli for arg in impl.argnames})
        except Exception as error:  # noqa: BLE001 - one plugin's failure must not stop the others
            failures.setdefault(impl.plugin_name, {})["register_commands"] = _describe(error)
            _registered.cache_clear()


def provider(what: str, name: str) -> dict[str, str | None]:
    """Which plugin registered the format, source or strategy ``name``, and its version."""
    plugin = _providers[(what, name)]
    return {"plugin": plugin, "version": _versions.get(plugin)}


def clear_caches() -> None:
    """Forget collected formats, sources, strategies and metrics (after a plugin is registered or removed)."""
    _registered.cache_clear()
    _broken_providers.clear()
    for name, failed in list(failures.items()):
        for hook in [hook for hook in failed if hook in REGISTRATIONS]:
            del failed[hook]  # collected again on next use
        if not failed:
            del failures[name]


def plugin_infos() -> list[PluginInfo]:
    """Every plugin, loaded or broken, after all registration hooks have run."""
    _registered()
    names = {name for name, _ in pm.list_name_plugin()} | set(failures)
    infos = []
    for name in names:
        plugin = pm.get_plugin(name)
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())) if plugin is not None else ()
        infos.append(PluginInfo(name, _versions.get(name), hooks, _failure_text(name) if name in failures else None))
    return sorted(infos, key=lambda info: info.name)
