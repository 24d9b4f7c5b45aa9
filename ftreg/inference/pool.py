"""Models kept loaded for serving: each base once, its adapters loaded onto it on demand.

A request names a registry reference (``support-v2``, ``support``, ``support@prod``, a base or a
checkpoint). It is resolved on every request, so an alias move is seen at once; files and
fingerprints are checked once, when a version is loaded. Adapters of one base share that base's
PEFT model (``load_adapter``) and are switched per request; past ``max_adapters`` the least
recently used is unloaded. A base past ``max_bases`` is refused rather than swapped, because
loading a base takes seconds that a request should not silently pay.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ftreg.contract import Entry, ResolvedBase
from ftreg.datasets.tokenizer import load_encoder
from ftreg.engines.quiet import no_loading_bars, peft_deprecations_silenced
from ftreg.errors import FtregError
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
    adapters: OrderedDict[str, str] = field(default_factory=OrderedDict)  # version ref -> PEFT adapter name, oldest first


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
            served = self._served(entry)
            with _active(served):
                yield served

    def resident(self) -> list[str]:
        """The version refs loaded now, bases first."""
        return [base.resolved.ref for base in self.bases.values()] + [ref for base in self.bases.values() for ref in base.adapters]

    def _served(self, entry: Entry) -> Served:
        fingerprint = self.base_of.get(entry.ref)
        if fingerprint is None or fingerprint not in self.bases:
            adapter_entry, resolved = checked_parts(self.registry, entry.ref)
            base = self._base(resolved)
            self.base_of[entry.ref] = resolved.fingerprint
        else:
            base = self.bases[fingerprint]
            adapter_entry = entry if entry.kind == "adapter" else None
        name = self._adapter(base, adapter_entry) if adapter_entry is not None else None
        composed = Composed(base.model, base.tokenizer, prompter(self.registry, entry.ref), f"{entry.ref} on {base.resolved.ref}" if name else entry.ref, base.encoder)
        return Served(composed, base, name, entry)

    def _base(self, resolved: ResolvedBase) -> LoadedBase:
        if resolved.fingerprint in self.bases:
            return self.bases[resolved.fingerprint]
        if len(self.bases) >= self.max_bases:
            loaded = ", ".join(base.resolved.ref for base in self.bases.values())
            raise PoolFull(f"{resolved.ref} is a base this server has no room for (`max_bases` {self.max_bases}: {loaded} loaded)")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        no_loading_bars()
        model = AutoModelForCausalLM.from_pretrained(resolved.path)
        model.eval()
        base = LoadedBase(resolved, model, AutoTokenizer.from_pretrained(resolved.path), load_encoder(resolved.path))
        self.bases[resolved.fingerprint] = base
        return base

    def _adapter(self, base: LoadedBase, entry: Entry) -> str:
        if entry.ref in base.adapters:
            base.adapters.move_to_end(entry.ref)
            return base.adapters[entry.ref]
        if len(base.adapters) >= self.max_adapters:
            evicted_ref, evicted = base.adapters.popitem(last=False)
            base.model.delete_adapter(evicted)
            self.base_of.pop(evicted_ref, None)
        name = re.sub(r"\W", "_", entry.ref)  # PEFT names adapters as module attributes
        with bitsandbytes_hidden(), peft_deprecations_silenced():
            from peft import PeftModel

            if isinstance(base.model, PeftModel):
                base.model.load_adapter(str(entry.path), adapter_name=name)
            else:
                base.model = PeftModel.from_pretrained(base.model, str(entry.path), adapter_name=name)
            base.model.set_adapter(name)
            check_adapter_keys(base.model, entry, name)
        base.model.eval()
        base.adapters[entry.ref] = name
        return name


@contextmanager
def _active(served: Served) -> Iterator[None]:
    """The served adapter switched on, or every adapter off for the bare base."""
    model = served.base.model
    if served.adapter is not None:
        model.set_adapter(served.adapter)
        yield
    elif served.base.adapters:  # a PeftModel serving its bare base
        with model.disable_adapter():
            yield
    else:
        yield
