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
    allowed = None if allow is None else {name.strip().lower() for name in allow.split(",") if name.strip()}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        names = {entry_point.name.lower(), *([dist.name.lower()] if dist else [])}
        if allowed is not None and not names & allowed:
            continue
        try:
            plugin = entry_point.load()
            register(plugin, entry_point.name, dist.version if dist else None)
        except Exception as error:  # noqa: BLE001 - isolating third-party code is the point (a bad hookimpl too)
            _versions[entry_point.name] = dist.version if dist else None
            failures.setdefault(entry_point.name, {})["import"] = _describe(error)


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


def _collect(hook_name: str, what: str) -> dict[str, Any]:
    """Everything registered through ``hook_name``, by name.

    Each plugin's registrations count only if its whole call succeeded. Plugins are asked in
    pluggy's order (the most recently registered first), which decides between two plugins that
    register one name; no plugin can take a built-in's name, since built-ins are merged first.
    """
    per_plugin: dict[str, list[Any]] = {}

    def calls() -> None:
        load_plugins()
        for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
            registered: list[Any] = []
            per_plugin[impl.plugin_name] = registered
            # Each implementation gets its own register function, so what it adds is attributable.
            _call_one(hook_name, impl, registered)

    calls()
    found: dict[str, Any] = {}
    order = sorted(per_plugin, key=lambda name: name not in DEFAULT_PLUGINS)
    for plugin_name in order:
        if hook_name in failures.get(plugin_name, {}):
            continue  # a call that raised registers nothing, not even what it added before raising
        taken = [obj.name for obj in per_plugin[plugin_name] if obj.name in found]
        if taken:
            owner = _providers[(what, taken[0])]
            failures.setdefault(plugin_name, {})[hook_name] = f"ValueError: {what} {taken[0]!r} is already registered by {owner}"
            continue
        for obj in per_plugin[plugin_name]:
            found[obj.name] = obj
            _providers[(what, obj.name)] = plugin_name
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


@functools.cache
def dataset_formats() -> dict[str, DatasetFormat]:
    """Every registered dataset format, by name."""
    return _collect("register_dataset_formats", DATASET_FORMAT)


@functools.cache
def dataset_sources() -> dict[str, DatasetSource]:
    """Every registered dataset source, by name, in the order they are asked (plugins before built-ins)."""
    found = _collect("register_dataset_sources", DATASET_SOURCE)
    return dict(sorted(found.items(), key=lambda item: _providers[(DATASET_SOURCE, item[0])] in DEFAULT_PLUGINS))


@functools.cache
def training_strategies() -> dict[str, TrainingStrategy]:
    """Every registered training strategy, by name."""
    return _collect("register_training_strategies", TRAINING_STRATEGY)


@functools.cache
def metrics() -> dict[str, Metric]:
    """Every registered generation metric, by name."""
    return _collect("register_metrics", METRIC)


def get_dataset_format(name: str) -> DatasetFormat:
    return _lookup(dataset_formats(), name, DATASET_FORMAT)


def get_training_strategy(name: str) -> TrainingStrategy:
    return _lookup(training_strategies(), name, TRAINING_STRATEGY)


def _lookup(found: dict[str, T], name: str, what: str) -> T:
    if name not in found:
        raise UnknownPlugin(f"unknown {what} {name!r}; available: {', '.join(sorted(found)) or 'none'}")
    return found[name]


def register_commands(cli: Any) -> None:
    call("register_commands", cli=cli)


def provider(what: str, name: str) -> dict[str, str | None]:
    """Which plugin registered the format, source or strategy ``name``, and its version."""
    plugin = _providers[(what, name)]
    return {"plugin": plugin, "version": _versions.get(plugin)}


def clear_caches() -> None:
    """Forget collected formats, sources, strategies and metrics (after a plugin is registered or removed)."""
    for collected in (dataset_formats, dataset_sources, training_strategies, metrics):
        collected.cache_clear()
    for failed in failures.values():
        for hook in [hook for hook in failed if hook.startswith("register_") and hook != "register_commands"]:
            del failed[hook]  # collected again on next use


def plugin_infos() -> list[PluginInfo]:
    """Every plugin, loaded or broken, after all registration hooks have run."""
    dataset_formats()
    dataset_sources()
    training_strategies()
    metrics()
    names = {name for name, _ in pm.list_name_plugin()} | set(failures)
    infos = []
    for name in names:
        plugin = pm.get_plugin(name)
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())) if plugin is not None else ()
        failed = failures.get(name)
        error = "; ".join(f"{message}" if hook in ("import", "register") else f"{hook}: {message}" for hook, message in failed.items()) if failed else None
        infos.append(PluginInfo(name, _versions.get(name), hooks, error or None))
    return sorted(infos, key=lambda info: info.name)
