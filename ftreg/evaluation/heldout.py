"""`train --eval-generate N`: the just-trained model's greedy answers to N held-out examples, scored
by every registered metric into the version's metrics (as ``eval_bleu``, ``eval_rouge_l``, ...)."""

from __future__ import annotations

from pathlib import Path

from ftreg import plugins
from ftreg.contract import IGNORE_INDEX, EncodedExample, ResolvedBase
from ftreg.datasets.tokenizer import load_encoder
from ftreg.evaluation.evaluate import DEFAULT_MAX_NEW_TOKENS, Case, greedy_answers, scores
from ftreg.inference.compose import Composed, assemble
from ftreg.inference.prompts import Prompter


def heldout_scores(base: ResolvedBase, trained: Path, kind: str, examples: list[EncodedExample]) -> dict[str, float]:
    """Scores of the model in ``trained`` (an adapter on ``base``, or a checkpoint) on ``examples``;
    empty when none of them has a prompt before its first loss-carrying token."""
    model_path, adapter = (base.path, trained) if kind == "adapter" else (trained, None)
    model, tokenizer = assemble(model_path, adapter)
    composed = Composed(model, tokenizer, Prompter(), str(trained), load_encoder(model_path))
    cases = [case for example in examples if (case := _case(example, tokenizer)) is not None]
    if not cases:
        return {}
    found = scores(plugins.metrics(), greedy_answers(composed, cases, DEFAULT_MAX_NEW_TOKENS, lambda done: None), [case.reference for case in cases])
    return {f"eval_{name}": value for name, value in found.items()}


def _case(example: EncodedExample, tokenizer: object) -> Case | None:
    """The tokens before the first loss-carrying one as the prompt, that answer (to its end) as the reference."""
    first = next((index for index, label in enumerate(example.labels) if label != IGNORE_INDEX), 0)
    if first == 0:
        return None
    end = next((index for index in range(first, len(example.labels)) if example.labels[index] == IGNORE_INDEX), len(example.labels))
    reference = tokenizer.decode(example.labels[first:end], skip_special_tokens=True).strip()  # type: ignore[attr-defined]
    return Case("", example.input_ids[:first], reference)
