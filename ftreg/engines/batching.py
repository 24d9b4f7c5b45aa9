"""Padding-free batches, shared by both engines."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ftreg.contract import IGNORE_INDEX, EncodedExample
from ftreg.engines.packed_attention import packed_attention_used


def packing_collator() -> Any:
    """Padding-free batches: each batch's examples are concatenated into one row.

    Positions restart at 0 for every example, and with no attention mask and no KV cache,
    transformers turns those position_ids into a block-diagonal causal mask (a GPT-2 computes the
    same per example in training: `packed_attention`), so packed
    examples never attend to each other (tests/test_packing.py checks the logits). The first label of
    every example is IGNORE_INDEX, so no example learns to predict across a boundary.
    """
    from transformers import DataCollatorWithFlattening

    return DataCollatorWithFlattening(separator_id=IGNORE_INDEX)


@contextmanager
def packed_training(model: Any) -> Iterator[None]:
    """Prepare ``model`` for packed batches, and put back what the record must keep.

    Packed batches hold no padding, so the model is told it has no pad token for the while: its
    padding check (GPT-2's pad is its end-of-text token, which ends every packed example) would
    otherwise warn about padding there is not. The loss is named, since GPT-2's config names none,
    and computed by ftreg's `causal_lm_loss`; GPT-2's GELU by one kernel, dropout masks from
    cheaper draws, and the tied embedding's gradient row by row (`training_ops`).
    A GPT-2 computes attention example by example (`packed_attention`), and freed memory stays
    with the process for the next micro-batch (`heap`).
    """
    from ftreg.engines.heap import freed_memory_kept
    from ftreg.engines.training_ops import causal_lm_loss, cheaper_dropout_used, fused_gelu_used, tied_embedding_rows_added

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    pad_token_id = base.config.pad_token_id
    base.config.pad_token_id = None
    base.loss_type = "ForCausalLM"
    transformers_loss, base.loss_function = base.loss_function, causal_lm_loss
    try:
        with packed_attention_used(base), fused_gelu_used(base), cheaper_dropout_used(base), tied_embedding_rows_added(base), freed_memory_kept():
            yield
    finally:
        base.config.pad_token_id = pad_token_id  # saved with a checkpoint: it must be the base's
        base.loss_function = transformers_loss


def step_budget(batch_size: int, max_length: int) -> int:
    """Tokens per micro-batch: what ``batch_size`` examples padded to ``max_length`` would hold.

    A step's ``batch_size x grad_accum`` examples are packed and cut into micro-batches of at most
    this many tokens, so short examples share a forward pass while no micro-batch holds more
    tokens (and so more activation memory) than the recipe's padded batch would have.
    """
    return batch_size * max_length


def split_packed(batch: dict[str, Any], token_budget: int) -> list[dict[str, Any]]:
    """A packed row (one row of examples whose position ids restart at 0) cut at example boundaries
    into rows of at most ``token_budget`` tokens; an example longer than the budget is a row alone."""
    length = batch["input_ids"].shape[1]
    if length <= token_budget:
        return [batch]
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist()
    cuts = [0]
    for start, end in zip(starts, [*starts[1:], length]):
        if end - cuts[-1] > token_budget and start > cuts[-1]:
            cuts.append(start)
    cuts.append(length)
    return [{key: value[:, begin:end] for key, value in batch.items()} for begin, end in itertools.pairwise(cuts)]


# Micro-batch lengths are rounded up to a multiple of this. oneDNN builds a bf16 matmul kernel for
# each new shape (about 2.5 ms a matmul on an AMX CPU, as long as the matmul itself at the embedded
# base's size), and packed rows vary in length at every step: rounded, they repeat within an epoch.
SHAPE_QUANTUM = 32


def model_inputs(batch: dict[str, Any], quantum: int = SHAPE_QUANTUM) -> dict[str, Any]:
    """A packed row as the model gets it: logits only where a label is predicted, shapes rounded.

    The vocabulary projection and its softmax are 40% of the embedded base's compute per token
    (a third of GPT-2's), and in instruction data the prompt's positions predict nothing, so only
    the positions that predict a label are projected (``shift_labels`` are their targets). The row
    grows to a multiple of ``quantum`` tokens by one more example that predicts nothing, and the
    projected positions by repeats of the first whose target is ignored. The loss, and so what is
    learned, is the same. The inputs are on the row's device.
    """
    import torch

    assert set(batch) == {"input_ids", "labels", "position_ids"} and batch["labels"].shape[0] == 1, "one packed row"
    filler = torch.arange(-batch["input_ids"].shape[1] % quantum, device=batch["input_ids"].device).unsqueeze(0)
    input_ids = torch.cat([batch["input_ids"], torch.zeros_like(filler)], dim=1)
    labels = torch.cat([batch["labels"], torch.full_like(filler, IGNORE_INDEX)], dim=1)
    position_ids = torch.cat([batch["position_ids"], filler], dim=1)  # from 0: a separate example
    targets = labels[0, 1:]
    keep = (targets != IGNORE_INDEX).nonzero().flatten()
    repeats = -len(keep) % quantum
    shift_labels = torch.cat([targets[keep], targets.new_full((repeats,), IGNORE_INDEX)])
    keep = torch.cat([keep, keep[:1].expand(repeats)])
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "logits_to_keep": keep, "shift_labels": shift_labels.unsqueeze(0)}


def micro_batches(examples: list[EncodedExample], batch_size: int, seed: int) -> Iterator[list[EncodedExample]]:
    """Endless micro-batches; each epoch in its own seeded order, so a run is reproducible."""
    import torch

    if not examples:
        raise ValueError("no examples to make batches of")
    epoch = 0
    while True:
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        for start in range(0, len(order), batch_size):
            yield [examples[i] for i in order[start : start + batch_size]]
        epoch += 1


def to_dataset(examples: list[EncodedExample]) -> Any:
    """The examples as a `datasets.Dataset`, as the `Trainer` takes them."""
    from datasets import Dataset

    return Dataset.from_dict({"input_ids": [e.input_ids for e in examples], "labels": [e.labels for e in examples]})
