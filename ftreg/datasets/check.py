"""What `ftreg data check` reports: a dataset as training would see it, token by token."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from ftreg.contract import IGNORE_INDEX, EncodedExample
from ftreg.datasets.encoding import encode
from ftreg.datasets.loading import LoadedDataset
from ftreg.errors import DatasetError

LOSS_OPEN, LOSS_CLOSE = "[[", "]]"


def check_report(dataset: LoadedDataset, tokenizer: Any, max_length: int) -> dict[str, Any]:
    """Sizes, token-length statistics, truncation, and one example with its loss-carrying tokens marked."""
    untruncated, _ = encode(dataset.examples, tokenizer, max_length=10**9)
    if not untruncated:
        raise DatasetError(f"{dataset.path}: no example has a token that carries loss; nothing could be trained on it")
    lengths = sorted(len(encoded.input_ids) for encoded in untruncated)
    first, _ = encode(dataset.examples[:1], tokenizer, max_length)
    return {
        "source": dataset.source,
        "path": str(dataset.path),
        "format": dataset.format.name,
        "detected": dataset.detected,
        "examples": len(dataset.examples),
        "duplicate_lines": dataset.duplicate_lines,
        "tokens": {
            "min": lengths[0],
            "median": lengths[len(lengths) // 2],
            "p95": lengths[min(len(lengths) - 1, int(len(lengths) * 0.95))],
            "max": lengths[-1],
        },
        "max_length": max_length,
        "truncated": sum(length > max_length for length in lengths),
        "example": {"line": dataset.examples[0].line, "rendered": render_loss(first[0], tokenizer) if first else ""},
    }


def render_loss(encoded: EncodedExample, tokenizer: Any) -> str:
    """The example's text with every run of loss-carrying tokens wrapped in [[ ]]."""
    parts = []
    pairs = zip(encoded.input_ids, encoded.labels)
    for trains, run in groupby(pairs, key=lambda pair: pair[1] != IGNORE_INDEX):
        text = tokenizer.decode([token for token, _ in run])
        parts.append(f"{LOSS_OPEN}{text}{LOSS_CLOSE}" if trains else text)
    return "".join(parts)
