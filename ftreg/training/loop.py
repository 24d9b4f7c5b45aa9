"""A training loop small enough to read in one sitting (the `scratch` strategy's engine).

AdamW with decoupled weight decay on matrices only, warmup then linear or cosine decay,
gradient accumulation, clipping, periodic evaluation, early stopping that keeps the best
weights, and a per-step loss log for the loss curve.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from ftreg.training.examples import IGNORE_INDEX, EncodedExample
from ftreg.training.spec import TrainSpec
from ftreg.training.trainer import packing_collator


@dataclass
class LoopResult:
    steps: int
    train_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    eval_losses: list[tuple[int, float]] = field(default_factory=list)
    best_eval_loss: float | None = None
    stopped_early: bool = False
    tokens: int = 0
    seconds: float = 0.0


def parameter_groups(model, weight_decay: float) -> list[dict]:
    """AdamW groups: decay for weight matrices only.

    Decay on biases and LayerNorm gains only hurts, and on GPT-2's tied embeddings it keeps their
    norm small, which caps how confident the logits can get (adapters trained later, which leave
    the embeddings frozen, cannot undo that).
    """
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            embedding = name.startswith(("transformer.wte", "transformer.wpe"))
            (decay if parameter.dim() == 2 and not embedding else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def total_steps(spec: TrainSpec, n_examples: int) -> int:
    if spec.max_steps > 0:
        return spec.max_steps
    micro_batches = math.ceil(n_examples / spec.batch_size) * spec.epochs
    return max(1, math.ceil(micro_batches / spec.grad_accum))


def micro_batches(examples: list[EncodedExample], batch_size: int, seed: int) -> Iterator[list[EncodedExample]]:
    """Endless micro-batches; each epoch in its own seeded order, so a run is reproducible."""
    import torch

    epoch = 0
    while True:
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        for start in range(0, len(order), batch_size):
            yield [examples[i] for i in order[start : start + batch_size]]
        epoch += 1


def train_loop(model, spec: TrainSpec, train: list[EncodedExample], eval_set: list[EncodedExample], progress=None) -> LoopResult:
    import torch
    from transformers import get_scheduler

    torch.manual_seed(spec.seed)
    collate = packing_collator()
    steps = total_steps(spec, len(train))
    optimizer = torch.optim.AdamW(parameter_groups(model, spec.weight_decay), lr=spec.learning_rate, betas=(0.9, 0.95))
    scheduler = get_scheduler(spec.lr_scheduler, optimizer, num_warmup_steps=spec.warmup_steps, num_training_steps=steps)
    batches = micro_batches(train, spec.batch_size, spec.seed)
    result = LoopResult(steps=0)
    best_state, evals_without_improvement = None, 0
    started = time.perf_counter()

    model.train()
    for step in range(1, steps + 1):
        step_loss = 0.0
        for _ in range(spec.grad_accum):
            batch = next(batches)
            result.tokens += sum(len(e.input_ids) for e in batch)
            loss = _loss(model, collate, batch) / spec.grad_accum  # the mean over the accumulated micro-batches
            loss.backward()
            step_loss += loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        result.train_losses.append((step, step_loss))
        result.steps = step
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{step_loss:.3f}", refresh=False)

        if eval_set and (step % spec.eval_steps == 0 or step == steps):
            eval_loss = evaluate(model, collate, eval_set, spec.batch_size)
            result.eval_losses.append((step, eval_loss))
            if result.best_eval_loss is None or eval_loss < result.best_eval_loss:
                result.best_eval_loss, evals_without_improvement = eval_loss, 0
                if spec.patience:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                evals_without_improvement += 1
                if spec.patience and evals_without_improvement >= spec.patience:
                    result.stopped_early = True
                    break

    result.seconds = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)  # early stopping publishes the best weights, not the last
    return result


def _loss(model, collate, batch: list[EncodedExample]):
    packed = collate([{"input_ids": e.input_ids, "labels": e.labels} for e in batch])
    return model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], labels=packed["labels"]).loss


def evaluate(model, collate, examples: list[EncodedExample], batch_size: int) -> float:
    """Token-weighted mean loss over ``examples``."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            tokens = sum(sum(label != IGNORE_INDEX for label in e.labels[1:]) for e in batch)
            total += _loss(model, collate, batch).item() * tokens
            count += tokens
    model.train()
    return total / max(count, 1)


def plot_losses(result: LoopResult, path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    axes.plot(*zip(*result.train_losses), label="train loss", linewidth=1)
    if result.eval_losses:
        axes.plot(*zip(*result.eval_losses), "o-", label="eval loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
