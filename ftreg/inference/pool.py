"""Models kept loaded for serving: each base once, its adapters loaded onto it on demand.

A request names a registry reference (``support-v2``, ``support``, ``support@prod``, a base or a
checkpoint). It is resolved on every request, so an alias move is seen at once; files and
fingerprints are checked once, when a version is loaded. Adapters of one base share that base's
PEFT model (``load_adapter``) and are switched per request; past ``max_adapters`` the least
recently used is unloaded. A base past ``max_bases`` is refused rather than swapped, because
loading a base takes seconds that a request should not silently pay.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ftreg.bases.resolve import fingerprint_matches
from ftreg.contract import Entry, ResolvedBase
from ftreg.datasets.tokenizer import load_encoder
from ftreg.engines.quiet import no_loading_bars, padding_false_alarm_silenced, peft_deprecations_silenced
from ftreg.errors import ArtifactError, FtregError
from ftreg.inference.compose import Composed, bitsandbytes_hidden, check_adapter_keys, checked_parts
from ftreg.inference.prompts import prompter
from ftreg.registry import Registry


class PoolFull(FtregError):
    """A request needs a base that would exceed ``max_bases``."""


@dataclass
class LoadedBase:
    resolved: ResolvedBase
    model: Any  # the plain model until its first adapter loads, a PeftModel after
    tokenizer: Any
    encoder: Any
    active: str | None = None  # the adapter slot PEFT has active: switching costs a walk over every module
    adapters: OrderedDict[str, str] = field(default_factory=OrderedDict)  # version ref -> its PEFT adapter slot, oldest first
    slot_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)  # a refilled slot's parameters by name: found once, not per swap


@dataclass(frozen=True)
class Served:
    """One request's model: a base with one of its adapters active (or none)."""

    composed: Composed
    base: LoadedBase
    adapter: str | None  # the PEFT adapter name, None for the bare base or a checkpoint
    entry: Entry  # the version the reference resolved to


class ModelPool:
    def __init__(self, registry: Registry, max_adapters: int = 8, max_bases: int = 1):
        if max_adapters < 1 or max_bases < 1:
            raise FtregError("`max_adapters` and `max_bases` must be at least 1")
        self.home = registry.home
        self._threads = threading.local()  # SQLite connections belong to the thread that opened them
        self.max_adapters = max_adapters
        self.max_bases = max_bases
        self.bases: dict[str, LoadedBase] = {}  # by base fingerprint
        self.base_of: dict[str, str] = {}  # version ref -> the fingerprint of the base it runs on
        self._slots = 0  # adapter slots made so far: each gets a fresh name
        # Told of every adapter load: its seconds, and whether it evicted another (for metrics).
        self.on_adapter_load: Callable[[float, bool], None] = lambda seconds, evicted: None
        # One generation at a time: the adapter switch and the forward pass must not interleave.
        self.lock = threading.Lock()

    @property
    def registry(self) -> Registry:
        """This thread's view of the registry (a server answers requests on several threads)."""
        if not hasattr(self._threads, "registry"):
            self._threads.registry = Registry(self.home)
        return self._threads.registry

    @contextmanager
    def serving(self, reference: str) -> Iterator[Served]:
        """The model for ``reference``, loaded if need be, with its adapter active, held for one generation."""
        entry = self.registry.resolve(reference)
        with self.lock:
            served = self.prepare(entry)
            with active(served):
                yield served

    def resident(self) -> list[str]:
        """The version refs loaded now, bases first."""
        return [base.resolved.ref for base in self.bases.values()] + [ref for base in self.bases.values() for ref in base.adapters]

    def prepare(self, entry: Entry) -> Served:
        """``entry`` loaded (with its base), its adapter most recently used; the caller holds `lock`."""
        fingerprint = self.base_of.get(entry.ref)
        adapter_entry: Entry | None
        if fingerprint is None or fingerprint not in self.bases:
            base_in_memory = self._loaded_base_of(entry)
            if base_in_memory is not None:  # its base is loaded, and was checked then: check the adapter's own files
                self.registry.verify_files(entry)
                base, adapter_entry = base_in_memory, entry
            else:
                adapter_entry, resolved = checked_parts(self.registry, entry.ref)
                base = self._base(resolved)
            self.base_of[entry.ref] = base.resolved.fingerprint
        else:
            base = self.bases[fingerprint]
            adapter_entry = entry if entry.kind == "adapter" else None
        name = self._adapter(base, adapter_entry) if adapter_entry is not None else None
        composed = Composed(base.model, base.tokenizer, prompter(self.registry, entry.ref), f"{entry.ref} on {base.resolved.ref}" if name else entry.ref, base.encoder)
        return Served(composed, base, name, entry)

    def _loaded_base_of(self, entry: Entry) -> LoadedBase | None:
        """The loaded base an adapter records as its own (by fingerprint), if any."""
        recorded = entry.manifest.get("base_fingerprint")
        if entry.kind != "adapter" or recorded is None:
            return None
        return next((base for base in self.bases.values() if fingerprint_matches(recorded, base.resolved)), None)

    def _base(self, resolved: ResolvedBase) -> LoadedBase:
        if resolved.fingerprint in self.bases:
            return self.bases[resolved.fingerprint]
        if len(self.bases) >= self.max_bases:
            loaded = ", ".join(base.resolved.ref for base in self.bases.values())
            raise PoolFull(f"{resolved.ref} is a base this server has no room for (`max_bases` {self.max_bases}: {loaded} loaded)")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        no_loading_bars()
        padding_false_alarm_silenced()
        model = AutoModelForCausalLM.from_pretrained(resolved.path)
        model.eval()
        base = LoadedBase(resolved, model, AutoTokenizer.from_pretrained(resolved.path), load_encoder(resolved.path))
        self.bases[resolved.fingerprint] = base
        return base

    def _adapter(self, base: LoadedBase, entry: Entry) -> str:
        """The PEFT adapter name (a slot) holding ``entry``'s weights, loading them if they are not resident."""
        if entry.ref in base.adapters:
            base.adapters.move_to_end(entry.ref)
            return base.adapters[entry.ref]
        started = time.perf_counter()
        evicted = len(base.adapters) >= self.max_adapters
        with bitsandbytes_hidden(), peft_deprecations_silenced():
            from peft import LoraConfig, PeftModel

            config = LoraConfig.from_pretrained(str(entry.path))
            if evicted:
                evicted_ref, slot = base.adapters.popitem(last=False)
                self.base_of.pop(evicted_ref, None)
                if _same_shape(base.model.peft_config[slot], config):
                    try:
                        _refill(base, slot, entry, config)  # copy into the slot: no layers rebuilt
                    except ArtifactError:
                        _delete(base, slot)  # it holds the evicted adapter, which is gone from the books
                        raise
                    base.adapters[entry.ref] = slot
                    self.on_adapter_load(time.perf_counter() - started, evicted)
                    return slot
                _delete(base, slot)
            slot = f"slot{self._slots}"  # PEFT names adapters as module attributes: not the ref itself
            self._slots += 1
            if isinstance(base.model, PeftModel):
                # low_cpu_mem_usage: the new layers start empty instead of randomly initialised.
                base.model.load_adapter(str(entry.path), adapter_name=slot, low_cpu_mem_usage=True)
            else:
                base.model = PeftModel.from_pretrained(base.model, str(entry.path), adapter_name=slot, low_cpu_mem_usage=True)
            base.model.set_adapter(slot)
            base.active = slot
            check_adapter_keys(base.model, entry, slot)
        base.model.eval()
        base.adapters[entry.ref] = slot
        self.on_adapter_load(time.perf_counter() - started, evicted)
        return slot


# What decides a LoRA slot's layers: an adapter differing in none of these fits an evicted one's slot.
_SHAPE = ("peft_type", "r", "lora_alpha", "target_modules", "fan_in_fan_out", "use_rslora", "use_dora", "bias", "modules_to_save", "layers_to_transform")


def _same_shape(held: Any, incoming: Any) -> bool:
    def shape(config: Any) -> tuple:
        return tuple(sorted(value) if isinstance(value, (set, list)) else value for value in (getattr(config, key, None) for key in _SHAPE))

    return shape(held) == shape(incoming)


def _delete(base: LoadedBase, slot: str) -> None:
    base.model.delete_adapter(slot)
    base.slot_parameters.pop(slot, None)
    if base.active == slot:
        base.active = None


def _refill(base: LoadedBase, slot: str, entry: Entry, config: Any) -> None:
    """Copy ``entry``'s LoRA weights into the parameters of ``slot``, which has the same shape.

    A direct copy: PEFT's own loader walks every module of the model, which costs more than the
    copy on a large base. The saved keys must be exactly the slot's, so nothing is half-applied.
    """
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(entry.path / "adapter_model.safetensors"))
    if slot not in base.slot_parameters:
        marker = f".{slot}."
        base.slot_parameters[slot] = {name: parameter for name, parameter in base.model.named_parameters() if marker in name}
    parameters = base.slot_parameters[slot]
    # "...c_attn.lora_A.weight" is saved for the parameter "...c_attn.lora_A.<slot>.weight".
    mapped = {"{0}.{2}.{1}".format(*key.rsplit(".", 1), slot): tensor for key, tensor in weights.items()}
    if set(mapped) != set(parameters) or any(parameters[name].shape != tensor.shape for name, tensor in mapped.items()):
        raise ArtifactError(f"{entry.ref}: adapter weights do not fit the layers of its configuration")
    with torch.no_grad():
        for name, tensor in mapped.items():
            parameters[name].copy_(tensor)
    base.model.peft_config[slot] = config


@contextmanager
def active(served: Served) -> Iterator[None]:
    """The served adapter switched on, or every adapter off for the bare base."""
    model = served.base.model
    if served.adapter is not None:
        if served.base.active != served.adapter:
            model.set_adapter(served.adapter)
            served.base.active = served.adapter
        yield
    elif served.base.adapters:  # a PeftModel serving its bare base
        with model.disable_adapter():
            yield
    else:
        yield
