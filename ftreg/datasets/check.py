"""What `ftreg data check` reports: a dataset as training would see it, token by token.

It streams: a million-row file is read, tokenized and counted a batch at a time.
"""

from __future__ import annotations

from array import array
from itertools import groupby
from typing import Any

from ftreg.contract import IGNORE_INDEX, EncodedExample
from ftreg.datasets.encoding import encode_stream, nothing_to_train
from ftreg.datasets.loading import DatasetReader

LOSS_OPEN, LOSS_CLOSE = "[[", "]]"


def check_report(dataset: DatasetReader, tokenizer: Any, max_length: int) -> dict[str, Any]:
    """Sizes, token-length statistics, truncation, and one example with its loss-carrying tokens marked."""
    duplicates: list[int] = []
    lengths = array("I")
    trainable = 0
    first: tuple[int, EncodedExample | None] | None = None
    examples = dataset.examples(duplicates)
    for encoded, length in encode_stream(examples, tokenizer, max_length):
        lengths.append(length)
        trainable += encoded is not None
        if first is None:
            first = (encoded.line if encoded else 0, encoded)
    if not trainable:
        raise nothing_to_train(dataset.path, max_length)
    ordered = sorted(lengths)
    assert first is not None
    line, encoded_first = first
    return {
        "source": dataset.source,
        "path": str(dataset.path),
        "format": dataset.format.name,
        "detected": dataset.detected,
        "examples": len(lengths),
        "duplicate_lines": duplicates,
        "tokens": {
            "min": ordered[0],
            "median": ordered[len(ordered) // 2],
            "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
            "max": ordered[-1],
        },
        "max_length": max_length,
        "truncated": sum(length > max_length for length in ordered),
        "example": {"line": line, "rendered": render_loss(encoded_first, tokenizer) if encoded_first else ""},
    }


def render_loss(encoded: EncodedExample, tokenizer: Any) -> str:
    """The example's text with every run of loss-carrying tokens wrapped in [[ ]]."""
    parts = []
    pairs = zip(encoded.input_ids, encoded.labels)
    for trains, run in groupby(pairs, key=lambda pair: pair[1] != IGNORE_INDEX):
        text = tokenizer.decode([token for token, _ in run])
        parts.append(f"{LOSS_OPEN}{text}{LOSS_CLOSE}" if trains else text)
    return "".join(parts)
