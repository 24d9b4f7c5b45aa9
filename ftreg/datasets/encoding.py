"""Turning examples into token ids with a loss mask."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ftreg.contract import IGNORE_INDEX, EncodedExample, Example, Segment
from ftreg.errors import DatasetError

T = TypeVar("T")
BATCH = 512  # examples tokenized in one call: the fast tokenizer spreads a batch over the cores


def encode_stream(examples: Iterable[Example], tokenizer: Any, max_length: int) -> Iterator[tuple[Example, EncodedExample | None, int]]:
    """Each example with its encoding and its length before truncation to ``max_length``.

    Each segment is tokenized on its own, exactly as generation tokenizes a rendered prompt;
    segments marked ``eos`` are followed by the end-of-text token. The encoding is None when
    truncation cut every loss-carrying token: nothing is left to learn from it. Training and
    `data check` both decide with this function, so they cannot disagree.
    """
    iterator = iter(examples)
    while batch := list(itertools.islice(iterator, BATCH)):
        ids_of = iter(segment_ids([segment for example in batch for segment in example.segments], tokenizer))
        for example in batch:
            input_ids: list[int] = []
            labels: list[int] = []
            for segment in example.segments:
                ids = next(ids_of)
                input_ids += ids
                labels += ids if segment.trains else [IGNORE_INDEX] * len(ids)
            length = len(input_ids)
            input_ids, labels = input_ids[:max_length], labels[:max_length]
            trains = any(label != IGNORE_INDEX for label in labels)
            yield example, (EncodedExample(input_ids, labels, example.line) if trains else None), length


def encode(examples: Iterable[Example], tokenizer: Any, max_length: int) -> tuple[list[EncodedExample], int]:
    """The examples that keep a loss-carrying token, and how many had to be truncated to ``max_length``."""
    encoded, truncated = [], 0
    for _, example, length in encode_stream(examples, tokenizer, max_length):
        truncated += length > max_length
        if example is not None:
            encoded.append(example)
    return encoded, truncated


def segment_ids(segments: Sequence[Segment], tokenizer: Any) -> list[list[int]]:
    """Each segment's tokens, tokenized on its own (in one batched call), then the end-of-text
    token if it is marked ``eos``. Training encodes examples with it and generation its rendered
    prompt, so the two agree."""
    if not segments:
        return []
    batch = tokenizer([segment.text for segment in segments], add_special_tokens=False)["input_ids"]
    return [[*ids, tokenizer.eos_token_id] if segment.eos else list(ids) for segment, ids in zip(segments, batch)]


def nothing_to_train(path: Path, max_length: int) -> DatasetError:
    return DatasetError(f"{path}: no example is left to train on (`max_length` {max_length} cut every loss-carrying token, or `eval_split` took them all)")


def split(examples: list[T], eval_fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """A seeded train/eval split; the eval part is empty when the fraction is 0."""
    if eval_fraction == 0 or len(examples) < 2:
        return examples, []
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(examples) * eval_fraction))
    held = set(order[:n_eval])
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]
