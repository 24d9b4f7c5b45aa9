"""Answer quality: the quickstart's adapter and the bare base on the held-out support questions."""

from __future__ import annotations

from pathlib import Path

from bench.suite import Context, Section, Table, Target, run_checked

TITLE = "Answer quality (the quickstart's adapter)"
TARGET = 0.40  # issue 12: mean ROUGE-L F1 of greedy answers
RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "support-tiny-gpt2.toml"


def run(context: Context) -> Section:
    home = context.home("quality")
    env = context.env(home)
    short = ["--max-steps", "4"] if context.quick else []
    run_checked([context.ftreg, "train", "--quiet", "--config", str(RECIPE), *short], env)
    limit = ["--limit", "5"] if context.quick else []
    results = {ref: context.ftreg_json(home, "eval", ref, "--dataset", "builtin:support-test", *limit)["results"] for ref in ("support", "tiny-gpt2")}
    adapter, bare = results["support"], results["tiny-gpt2"]
    examples = int(adapter["examples"])
    rows = [[label, f"{r['rouge_l']:.3f}", f"{r['bleu']:.1f}", f"{r['perplexity']:.3f}", f"{r['answer_words']:.1f}"]
            for label, r in (("support (quickstart adapter)", adapter), ("tiny-gpt2 (bare base)", bare))]
    return Section(
        key="quality", title=TITLE,
        about=(f"`ftreg train --config recipes/support-tiny-gpt2.toml`{' (4 steps only: --quick)' if short else ''}, then `ftreg eval` of the adapter and of the bare "
               f"embedded base on {examples} held-out questions of `builtin:support-test` (greedy, at most 64 new tokens; ROUGE-L F1 is Google's rouge-score with "
               "stemming, BLEU is sacrebleu's)."),
        tables=[Table(["model", "ROUGE-L F1", "BLEU", "perplexity", "answer words"], rows)],
        targets=[Target(claim=f"the quickstart's adapter reaches a mean ROUGE-L F1 of {TARGET} on the held-out support questions", issue=12,
                        measured=f"{adapter['rouge_l']:.3f}", baseline=f"bare base: {bare['rouge_l']:.3f}", ratio=f"{adapter['rouge_l'] / max(bare['rouge_l'], 1e-9):.1f}x",
                        met=adapter["rouge_l"] >= TARGET)],
    )
