"""Load a base once, apply the selected adapter, generate.

Before any weights load, the adapter's files are checked against their recorded hashes and its
recorded base fingerprint against the base about to be used, so a wrong combination fails in
milliseconds with a message instead of producing quiet nonsense.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftreg.bases.resolve import fingerprint_matches, resolve_base
from ftreg.contract import Entry, ResolvedBase
from ftreg.datasets.encoding import segment_ids
from ftreg.datasets.tokenizer import load_encoder
from ftreg.engines.quiet import module_hidden, no_loading_bars, padding_false_alarm_silenced, peft_deprecations_silenced
from ftreg.errors import ArtifactError, BaseMismatch, ConfigError, FtregError
from ftreg.inference.options import GenerationOptions
from ftreg.inference.prompts import Prompter, prompter
from ftreg.registry import Registry


@dataclass
class Composed:
    model: Any
    tokenizer: Any
    prompter: Prompter  # renders prompts the way the version's training data was
    description: str  # what was loaded, e.g. "support-v2 on tiny-gpt2-v1"
    encoder: Any  # turns prompts into ids exactly as training encoded its examples (`load_encoder`)

    @property
    def prompt_template(self) -> str:
        """How a plain prompt is wrapped ("{prompt}" marks it)."""
        return self.prompter.template

    def generate(
        self,
        prompt: str | None = None,
        options: GenerationOptions = GenerationOptions(),
        raw: bool = False,
        *,
        system: str | None = None,
        input: str | None = None,
        messages: list[dict[str, str]] | None = None,
    ) -> str:
        """The completion alone: the rendered prompt is stripped from the output.

        ``system``, ``input`` and ``messages`` are rendered as training rendered them (`Prompter.segments`).
        """
        ids = self.encode(prompt, options, raw, system=system, input=input, messages=messages)
        return self.complete(ids, options)[0].text

    def encode(
        self,
        prompt: str | None = None,
        options: GenerationOptions = GenerationOptions(),
        raw: bool = False,
        *,
        system: str | None = None,
        input: str | None = None,
        messages: list[dict[str, str]] | None = None,
    ) -> list[int]:
        """The rendered prompt's ids, checked to leave room for ``options.max_new_tokens`` in the context."""
        segments = self.prompter.segments(prompt, raw=raw, system=system, input=input, messages=messages)
        ids = [token for ids in segment_ids(segments, self.encoder) for token in ids]
        if not ids:
            raise ConfigError("the prompt is empty")
        context = getattr(self.model.config, "n_positions", None) or getattr(self.model.config, "max_position_embeddings", None)
        if context and len(ids) + options.max_new_tokens > context:
            raise ConfigError(f"the prompt ({len(ids)} tokens) plus `max_new_tokens` {options.max_new_tokens} exceed the model's context of {context} tokens")
        return ids

    def complete(
        self, ids: list[int], options: GenerationOptions = GenerationOptions(), n: int = 1, stop: tuple[str, ...] = (), streamer: Any = None, cancel: Any = None
    ) -> list[Completion]:
        """``n`` completions of the prompt ``ids``, each cut before the first of the ``stop`` strings.

        ``streamer`` (a transformers streamer) receives tokens as they are generated (with ``n`` 1);
        generation ends early once ``cancel`` (a `threading.Event`) is set.
        """
        import torch
        from transformers import StoppingCriteriaList

        input_ids = torch.tensor([ids], device=self.model.device)
        if options.seed is not None:
            torch.manual_seed(options.seed)
        sampling = {} if options.greedy else {"temperature": options.temperature, "top_p": options.top_p, "top_k": options.top_k}
        stopping = {"stop_strings": list(stop), "tokenizer": self.tokenizer} if stop else {}
        with torch.no_grad():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                do_sample=not options.greedy,
                num_return_sequences=n,
                max_new_tokens=options.max_new_tokens,
                repetition_penalty=options.repetition_penalty,
                pad_token_id=self.tokenizer.eos_token_id,
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([lambda *_, **__: cancel.is_set()]) if cancel is not None else None,
                **stopping,
                **sampling,
            )
        return [self.completion(row[len(ids) :].tolist(), options, stop) for row in output]

    def completion(self, tokens: list[int], options: GenerationOptions, stop: tuple[str, ...]) -> Completion:
        """The generated ``tokens`` as a completion: cut at the end-of-text token and before the first stop string."""
        eos = self.tokenizer.eos_token_id
        ended = eos in tokens
        tokens = tokens[: tokens.index(eos) + 1] if ended else tokens  # the rest of the row is padding
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cut = min((text.find(s) for s in stop if s in text), default=-1)
        if cut >= 0:
            text, ended = text[:cut], True
        finish = "stop" if ended or len(tokens) < options.max_new_tokens else "length"
        return Completion(text.strip(), len(tokens), finish)


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int  # generated tokens, the end-of-text token included: what `usage` counts
    finish_reason: str  # "stop" (end of text or a stop string) or "length" (max_new_tokens reached)


class LeanComposed(Composed):
    """A `Composed` over `lean.LeanGPT2` (torch alone): one completion of one prompt at a time, no streaming."""

    def complete(
        self, ids: list[int], options: GenerationOptions = GenerationOptions(), n: int = 1, stop: tuple[str, ...] = (), streamer: Any = None, cancel: Any = None
    ) -> list[Completion]:
        import torch

        from ftreg.inference.lean import chooser

        if n != 1 or streamer is not None or cancel is not None:
            raise FtregError("a lean model gives one completion at a time and does not stream; load it without `lean`")
        if options.seed is not None:
            torch.manual_seed(options.seed)
        choose = chooser(options.greedy, options.temperature, options.top_k, options.top_p, options.repetition_penalty)
        return [self.completion(self.model.generate(ids, options.max_new_tokens, choose), options, stop)]


def compose(registry: Registry, adapter: str | None = None, base: str | None = None, prompt_format: str | None = None, lean: bool = False) -> Composed:
    """Load ``adapter`` onto its recorded base (or ``base``), or ``base`` alone.

    ``prompt_format`` names a dataset format to render prompts with; by default an adapter's
    recorded format, template and system prompt are used, and a bare base gets the prompt as it is.
    ``lean`` runs a plain GPT-2 and LoRA adapter with torch alone (`ftreg.inference.lean`), seconds
    faster to load, where it computes what transformers and peft would; other models load as usual.
    """
    prompts = prompter(registry, adapter, base, prompt_format)
    entry, resolved = checked_parts(registry, adapter, base)
    description = f"{entry.ref} on {resolved.ref}" if entry is not None else resolved.ref
    encoder = load_encoder(resolved.path)
    if lean:
        from ftreg.inference import lean as lean_gpt2

        lean_model = lean_gpt2.load(resolved.path, entry.path if entry is not None else None)
        if lean_model is not None:
            return LeanComposed(lean_model, encoder, prompts, description, encoder)
    model, tokenizer = assemble(resolved.path, entry.path if entry is not None else None)
    if entry is not None:
        check_adapter_keys(model, entry)
    return Composed(model, tokenizer, prompts, description, encoder)


def assemble(base: Path, adapter: Path | None = None) -> tuple[Any, Any]:
    """The model in ``base`` (a Hugging Face directory) with the LoRA adapter in ``adapter`` applied,
    ready to generate, and its tokenizer. Nothing is checked: `checked_parts` does that for versions."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    no_loading_bars()
    padding_false_alarm_silenced()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model: Any = AutoModelForCausalLM.from_pretrained(base)
    if adapter is not None:
        with bitsandbytes_hidden(), peft_deprecations_silenced():
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    return model, tokenizer


def checked_parts(registry: Registry, adapter: str | None = None, base: str | None = None) -> tuple[Entry | None, ResolvedBase]:
    """The adapter's entry (None for a base or a checkpoint alone) and the base to load it on, checked:
    the adapter's files against their hashes and its recorded base fingerprint against the base."""
    if adapter is None and base is None:
        raise FtregError("pass an `adapter`, a `base`, or both")
    entry = registry.resolve(adapter) if adapter else None
    if entry is not None and entry.kind == "checkpoint":
        if base is not None:
            raise FtregError(f"{entry.ref} is a full checkpoint; it has no base to replace (drop `base`)")
        base, entry = entry.ref, None  # a checkpoint generates on its own

    explicit_base = base is not None
    if entry is not None and entry.manifest.get("base_fingerprint") is None and not explicit_base:
        raise FtregError(f"{entry.ref} records no base (it was pulled from a repository without an ftreg manifest); pass the `base` it was trained on")
    if base is None and entry is not None:
        base = entry.base
        hub_home = entry.manifest.get("base_source") or {}
        if hub_home.get("registry_ref") and not registry.exists(hub_home["registry_ref"]):
            base = f"{hub_home['repo_id']}@{hub_home['revision']}"  # pulled without its registry base: fetch the pushed copy
    resolved = resolve_base(base, registry)
    if entry is not None:
        registry.verify_files(entry)
        recorded = entry.manifest.get("base_fingerprint")
        if recorded is not None and not fingerprint_matches(recorded, resolved):  # None: nothing recorded, the user named the base
            raise BaseMismatch(
                f"{entry.ref} was trained on base {entry.base} ({recorded}), "
                f"but {resolved.ref} has fingerprint {resolved.fingerprint}; refusing to compose them"
            )
    return entry, resolved


@contextlib.contextmanager
def bitsandbytes_hidden() -> Iterator[None]:
    """peft as on a machine without bitsandbytes, unless something loaded it already.

    peft imports bitsandbytes whenever it is installed (it is, for 8-bit training), on import and
    again while wrapping layers; that costs seconds, and a full-precision model never uses it.
    Hidden, those imports fail the way peft expects; afterwards peft finds bitsandbytes again,
    so 8-bit training later in the same process works.
    """
    import sys

    if "bitsandbytes" in sys.modules:
        yield
        return
    try:
        with module_hidden("bitsandbytes"):
            yield
    finally:
        # peft caches "no bitsandbytes" from the hidden state; kept, 8-bit LoRA later in this process
        # would wrap the 8-bit layers as plain Linear ones and save fan_in_fan_out=False.
        import_utils = sys.modules.get("peft.import_utils")
        if import_utils is not None:
            import_utils.is_bnb_available.cache_clear()
            import_utils.is_bnb_4bit_available.cache_clear()


def check_adapter_keys(model: Any, entry: Entry, adapter_name: str = "default") -> None:
    """peft only warns when saved and expected adapter weights differ; a silently half-applied adapter is worse."""
    from peft import get_peft_model_state_dict
    from safetensors import safe_open

    expected = set(get_peft_model_state_dict(model, adapter_name=adapter_name, save_embedding_layers=False))  # "auto" would ask the Hub about the base
    with safe_open(str(entry.path / "adapter_model.safetensors"), "pt") as weights:
        found = set(weights.keys())
    if expected != found:
        missing, unexpected = sorted(expected - found), sorted(found - expected)
        detail = "; ".join(part for part in (f"missing {', '.join(missing[:3])}" if missing else "", f"unexpected {', '.join(unexpected[:3])}" if unexpected else "") if part)
        raise ArtifactError(f"{entry.ref}: adapter weights do not fit the model: {detail}")
