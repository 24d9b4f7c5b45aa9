"""The built-in generation metrics, registered through the same hook as a plugin's.

Each imports its scorer only when it scores: `ftreg eval` pays for them, nothing else does.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from ftreg.contract import Metric
from ftreg.hookspecs import hookimpl


def bleu(predictions: list[str], references: list[str]) -> float:
    """Corpus BLEU as sacrebleu computes it (0 to 100), with its standard tokenizer: comparable with published figures."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(predictions, [references]).score)


def rouge_l(predictions: list[str], references: list[str]) -> float:
    """Mean ROUGE-L F1 (0 to 1) over the examples, words stemmed as Google's rouge-score does for its reported figures."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return statistics.fmean(scorer.score(reference, prediction)["rougeL"].fmeasure for prediction, reference in zip(predictions, references))


def exact_match(predictions: list[str], references: list[str]) -> float:
    """The share of answers equal to their reference, surrounding whitespace aside."""
    return statistics.fmean(prediction.strip() == reference.strip() for prediction, reference in zip(predictions, references))


@hookimpl
def register_metrics(register: Callable[[Metric], None]) -> None:
    register(Metric("bleu", "corpus BLEU (sacrebleu), 0 to 100", True, bleu))
    register(Metric("rouge_l", "mean ROUGE-L F1 (rouge-score, stemmed), 0 to 1", True, rouge_l))
    register(Metric("exact_match", "share of answers equal to the reference", True, exact_match))
