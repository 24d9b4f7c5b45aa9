"""What `ftreg data check` reports: a dataset as training would see it, token by token.

It streams: a million-row file is read, tokenized and counted a batch at a time.
"""

from __future__ import annotations

from array import array
from itertools import groupby
from typing import Any

from ftreg.contract import IGNORE_INDEX, EncodedExample, Example
from ftreg.datasets.encoding import encode_stream, nothing_to_train
from ftreg.datasets.loading import DatasetReader

LOSS_OPEN, LOSS_CLOSE = "[[", "]]"


def check_report(dataset: DatasetReader, tokenizer: Any, max_length: int) -> dict[str, Any]:
    """Sizes, token-length statistics, truncation, and one example with its loss-carrying tokens marked."""
    duplicates: list[int] = []
    lengths = array("I")  # 4 bytes an example: a million rows cost 4 MB
    trainable = 0
    first: tuple[Example, EncodedExample | None] | None = None
    for example, encoded, length in encode_stream(dataset.examples(duplicates), tokenizer, max_length):
        lengths.append(length)
        trainable += encoded is not None
        first = first or (example, encoded)
    if not trainable or first is None:
        raise nothing_to_train(dataset.path, max_length)
    ordered = sorted(lengths)
    first_example, first_encoded = first
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
        "example": {"line": first_example.line, "rendered": render_loss(first_encoded, tokenizer) if first_encoded else ""},
    }


def render_loss(encoded: EncodedExample, tokenizer: Any) -> str:
    """The example's text with every run of loss-carrying tokens wrapped in [[ ]]."""
    parts = []
    pairs = zip(encoded.input_ids, encoded.labels)
    for trains, run in groupby(pairs, key=lambda pair: pair[1] != IGNORE_INDEX):
        text = tokenizer.decode([token for token, _ in run])
        parts.append(f"{LOSS_OPEN}{text}{LOSS_CLOSE}" if trains else text)
    return "".join(parts)
