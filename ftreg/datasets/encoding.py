"""Turning examples into token ids with a loss mask."""

from __future__ import annotations

import random
from typing import Any, TypeVar

from ftreg.contract import IGNORE_INDEX, EncodedExample, Example, Segment

T = TypeVar("T")


def encode(examples: list[Example], tokenizer: Any, max_length: int) -> tuple[list[EncodedExample], int]:
    """Tokenize each segment on its own, exactly as generation tokenizes a rendered prompt.

    Segments marked ``eos`` are followed by the end-of-text token. Returns the encoded
    examples and how many had to be truncated to ``max_length`` (those left with no
    loss-carrying token are dropped).
    """
    encoded, truncated = [], 0
    for example in examples:
        input_ids: list[int] = []
        labels: list[int] = []
        for segment in example.segments:
            ids = segment_ids(segment, tokenizer)
            input_ids += ids
            labels += ids if segment.trains else [IGNORE_INDEX] * len(ids)
        if len(input_ids) > max_length:
            truncated += 1
            input_ids, labels = input_ids[:max_length], labels[:max_length]
        if all(label == IGNORE_INDEX for label in labels):
            continue  # truncation cut every loss-carrying token: nothing left to learn from
        encoded.append(EncodedExample(input_ids, labels, example.line))
    return encoded, truncated


def segment_ids(segment: Segment, tokenizer: Any) -> list[int]:
    """A segment's tokens, tokenized on its own, then the end-of-text token if it is marked ``eos``.

    Training encodes examples with it and generation its rendered prompt, so the two agree.
    """
    ids = tokenizer(segment.text, add_special_tokens=False)["input_ids"]
    return [*ids, tokenizer.eos_token_id] if segment.eos else list(ids)


def split(examples: list[T], eval_fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """A seeded train/eval split; the eval part is empty when the fraction is 0."""
    if eval_fraction == 0 or len(examples) < 2:
        return examples, []
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(examples) * eval_fraction))
    held = set(order[:n_eval])
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]
