"""How well the support adapter answers questions it never trained on, next to the bare base.

Mean word-level ROUGE-L F1 (Google's rouge-score, stemming on) of greedy answers to every
question of builtin:support-test against its reference answer. Target (issue 12): the
quickstart's adapter reaches 0.40.
Run: .venv/bin/python bench/support_quality.py [--adapter support] [--base tiny-gpt2] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from rouge_score import rouge_scorer

import ftreg
from ftreg.datasets.loading import dataset_path
from ftreg.inference.options import GenerationOptions

TARGET = 0.40


def score(model, pairs: list[dict], options: GenerationOptions) -> tuple[float, list[str]]:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    answers = [model.generate(pair["instruction"], options) for pair in pairs]
    scores = [scorer.score(pair["response"], answer)["rougeL"].fmeasure for pair, answer in zip(pairs, answers)]
    return statistics.mean(scores), answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default="support", help="the adapter to score (default: the quickstart's)")
    parser.add_argument("--base", default="tiny-gpt2", help="the bare base to score beside it")
    parser.add_argument("--limit", type=int, help="score only the first N test questions")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    pairs = json.loads(dataset_path("builtin:support-test").read_text())[: args.limit]
    options = GenerationOptions(greedy=True, max_new_tokens=args.max_new_tokens)
    print(f"builtin:support-test: {len(pairs)} held-out questions, greedy, {args.max_new_tokens} new tokens at most")
    print(f"{'model':<40}{'ROUGE-L F1':>12}{'s':>8}")
    for label, load in (
        (f"{args.base} (bare, instruction template)", lambda: ftreg.load(base=args.base, prompt_format="instruction")),
        (args.adapter, lambda: ftreg.load(args.adapter)),
    ):
        start = time.perf_counter()
        mean, answers = score(load(), pairs, options)
        print(f"{label:<40}{mean:>12.3f}{time.perf_counter() - start:>8.1f}")
    for pair, answer in zip(pairs[:2], answers):
        print(f"  Q: {pair['instruction']}\n  A: {answer}")
    print(f"\n{args.adapter}: {mean:.3f} {'meets' if mean >= TARGET else 'misses'} the target of {TARGET:.2f}")


if __name__ == "__main__":
    main()
