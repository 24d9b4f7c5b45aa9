"""Generation: tokens/s and first-token latency of the base, an adapter unmerged and merged, at batch 1 and 8,
next to plain transformers `generate` on the same base."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from bench.suite import Context, Section, Table, alternate

TITLE = "Generation"
QUESTION = "What's the deadline for sending items back?"
NEW_TOKENS = 64


def transformers_baseline(base_path: Any) -> Callable[[int, int], int]:
    """Plain transformers on the base: tokenizer, model, generate. Returns a function of (batch, new tokens) -> tokens made."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model = AutoModelForCausalLM.from_pretrained(base_path).eval()

    def generate(batch: int, new_tokens: int) -> int:
        inputs = tokenizer([QUESTION] * batch, return_tensors="pt")
        torch.manual_seed(0)
        # The decoding settings ftreg's defaults use, so that only the path differs.
        sampling = {"do_sample": True, "temperature": 0.8, "top_p": 0.95, "top_k": 50} if batch > 1 else {"do_sample": False}
        with torch.no_grad():
            output = model.generate(**inputs, **sampling, max_new_tokens=new_tokens, repetition_penalty=1.1, pad_token_id=tokenizer.eos_token_id)
        return sum(_until_end(row.tolist(), tokenizer.eos_token_id) for row in output[:, inputs["input_ids"].shape[1]:])

    return generate


def _until_end(tokens: list[int], eos: int) -> int:
    """Tokens of a row up to its end-of-text token, as ftreg counts a completion's."""
    return tokens.index(eos) + 1 if eos in tokens else len(tokens)


def ftreg_generator(composed: Any) -> Callable[[int, int], int]:
    """ftreg's own path: the version's prompt rendering, then `Composed.complete` (n rows of one prompt at batch > 1)."""
    from ftreg.inference.options import GenerationOptions

    ids = composed.encode(QUESTION)

    def generate(batch: int, new_tokens: int) -> int:
        options = GenerationOptions(max_new_tokens=new_tokens, greedy=batch == 1, seed=0)
        return sum(completion.tokens for completion in composed.complete(ids, options, n=batch))

    return generate


def timed(generate: Callable[[int, int], int], batch: int, new_tokens: int) -> Callable[[], float]:
    """Tokens/s of a full answer, or (with one new token) seconds to the first token."""

    def measure() -> float:
        start = time.perf_counter()
        tokens = generate(batch, new_tokens)
        seconds = time.perf_counter() - start
        return seconds * 1000 if new_tokens == 1 else tokens / seconds

    return measure


def models(home: Any, adapter: str, base_ref: str, base_path: Any) -> dict[str, Callable[[int, int], int]]:
    import ftreg
    from ftreg.registry import Registry

    registry = Registry(home)
    bare = ftreg.load(base=base_ref, registry=registry)
    unmerged = ftreg.load(adapter, registry=registry)
    to_merge = ftreg.load(adapter, registry=registry)
    merged = dataclasses.replace(to_merge, model=to_merge.model.merge_and_unload())
    return {
        "transformers generate (base)": transformers_baseline(base_path),
        "ftreg, base": ftreg_generator(bare),
        "ftreg, adapter unmerged": ftreg_generator(unmerged),
        "ftreg, adapter merged": ftreg_generator(merged),
    }


def run(context: Context) -> Section:
    repeat = 1 if context.quick else 3
    setups = [("embedded base", context.support_adapter(), "support-v1", "tiny-gpt2", context.embedded_base(), 8 if context.quick else NEW_TOKENS)]
    if not context.quick:
        setups.append(("124M-sized base", context.big_adapters(), "big-a-v1", str(context.big_base()), context.big_base(), NEW_TOKENS // 2))
    rows = []
    for label, home, adapter, base_ref, base_path, new_tokens in setups:
        contenders = models(home, adapter, base_ref, base_path)
        for generate in contenders.values():
            generate(8, 2)  # warm-up: the first call of a model pays for allocations the others reuse
        for batch in (1, 8):
            speed = alternate({name: timed(generate, batch, new_tokens) for name, generate in contenders.items()}, repeat, "tok/s")
            first = alternate({name: timed(generate, batch, 1) for name, generate in contenders.items()}, repeat, "ms")
            baseline = speed["transformers generate (base)"]
            rows += [[f"{label} ({new_tokens} tokens)", str(batch), name, speed[name].spread(0), f"{speed[name].median / baseline.median:.2f}x", first[name].spread(1)] for name in contenders]
    return Section(
        key="generation", title=TITLE,
        about=(
            "In one process, the models loaded once: a full answer (new tokens per row as the model column says; tokens/s counts every row's tokens up to its end) and, "
            f"separately, the time to the first token (prefill and one step), alternated over {repeat} rounds. Batch 1 decodes greedily; batch 8 samples 8 rows "
            "of the same prompt (seeded). Both use ftreg's default decoding settings (repetition penalty 1.1; "
            "temperature 0.8, top-p 0.95, top-k 50 when sampling). The baseline is plain transformers `generate` on the bare base with the raw prompt; ftreg renders "
            "the prompt as the version's training data was. The adapters are r=8 LoRA (the 124M-sized base's: random weights); merged means `merge_and_unload`."
        ),
        tables=[Table(["model", "batch", "path", "tokens/s", "vs transformers", "first token ms"], rows)],
    )

