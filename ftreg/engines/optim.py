"""The optimiser and schedule both the hand-written loop and the embedded base's pre-training use."""

from __future__ import annotations

import math
from typing import Any


def parameter_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay for weight matrices only.

    Decay on biases and LayerNorm gains only hurts, and on GPT-2's tied embeddings it keeps their
    norm small, which caps how confident the logits can get (adapters trained later, which leave
    the embeddings frozen, cannot undo that).
    """
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            embedding = name.startswith(("transformer.wte", "transformer.wpe"))
            (decay if parameter.dim() == 2 and not embedding else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw(model: Any, learning_rate: float, weight_decay: float, fused: bool = True) -> Any:
    """AdamW with GPT-2's betas (0.9, 0.95) over `parameter_groups`.

    ``fused`` updates each tensor in one kernel rather than a dozen passes over every weight, as
    the Trainer's default AdamW does from torch 2.8 on: one update of GPT-2-124M's weights on two
    CPU cores takes 0.1 to 0.3 s instead of 0.6 to 1.6.
    """
    import torch

    return torch.optim.AdamW(parameter_groups(model, weight_decay), lr=learning_rate, betas=(0.9, 0.95), fused=fused)


def total_steps(n_examples: int, batch_size: int, grad_accum: int, epochs: float, max_steps: int = -1) -> int:
    """Optimizer steps of a run: ``max_steps`` when set, else what ``epochs`` passes take."""
    if max_steps > 0:
        return max_steps
    micro_batches = math.ceil(n_examples / batch_size) * epochs
    return max(1, math.ceil(micro_batches / grad_accum))


def warmup_cosine(warmup: int, total: int, floor: float = 0.1) -> Any:
    """A LambdaLR factor: linear warmup, then cosine decay to ``floor`` of the peak."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
