"""A training loop small enough to read in one sitting (the `scratch` strategy's engine).

AdamW with decoupled weight decay on matrices only, warmup then linear or cosine decay,
gradient accumulation, clipping, periodic evaluation, early stopping that keeps the best
weights, a per-step loss log for the loss curve, and checkpoints that resume exactly.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftreg.contract import IGNORE_INDEX, EncodedExample, TrainSpec
from ftreg.engines.batching import micro_batches, model_inputs, packing_collator, split_packed, step_budget
from ftreg.engines.checkpoints import prune_checkpoints, seal_checkpoint
from ftreg.engines.optim import adamw, total_steps
from ftreg.files import atomic_directory


@dataclass
class LoopResult:
    steps: int
    train_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    eval_losses: list[tuple[int, float]] = field(default_factory=list)
    best_eval_loss: float | None = None
    stopped_early: bool = False
    tokens: int = 0
    seconds: float = 0.0
    evals_without_improvement: int = 0


def train_loop(
    model,
    spec: TrainSpec,
    train: list[EncodedExample],
    eval_set: list[EncodedExample],
    *,
    patience: int = 0,
    progress: Any = None,
    checkpoint_dir: Path | None = None,
    resume_from: Path | None = None,
    log: Callable[[int, dict[str, float]], None] = lambda step, metrics: None,
) -> LoopResult:
    """Train ``model`` in place; ``patience`` > 0 stops after that many evaluations without improvement.

    ``log(step, metrics)`` receives the mean training loss every ``spec.logging_steps`` steps and
    each evaluation, as the Trainer's logs do.
    """
    import torch
    from transformers import get_scheduler

    torch.manual_seed(spec.seed)
    collate = packing_collator()
    # bf16 mixed precision: matmuls in bf16 under autocast, weights, gradients and AdamW in fp32.
    half_precision = torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=spec.precision == "bf16")
    steps = total_steps(len(train), spec.batch_size, spec.grad_accum, spec.epochs, spec.max_steps)
    optimizer = adamw(model, spec.learning_rate, spec.weight_decay)
    scheduler = get_scheduler(spec.lr_scheduler, optimizer, num_warmup_steps=spec.warmup_steps, num_training_steps=steps)
    # Each step's batch_size x grad_accum examples, packed and cut into micro-batches by tokens (`step_budget`).
    batches = micro_batches(train, spec.batch_size * spec.grad_accum, spec.seed)
    budget = step_budget(spec.batch_size, spec.max_length)
    result = LoopResult(steps=0)
    best_state = None
    if resume_from is not None:
        result, best_state = _load_checkpoint(resume_from, model, optimizer, scheduler)
        for _ in range(result.steps):
            next(batches)  # the data position: the same examples an uninterrupted run would see next
        if progress is not None:
            progress.update(result.steps)
    started = time.perf_counter() - result.seconds

    model.train()
    for step in range(result.steps + 1, steps + 1):
        batch = next(batches)
        result.tokens += sum(len(e.input_ids) for e in batch)
        packed = _on(model.device, collate([{"input_ids": e.input_ids, "labels": e.labels} for e in batch]))
        targets = int((packed["labels"] != IGNORE_INDEX).sum())
        step_loss = 0.0
        for part in split_packed(packed, budget):
            # Each part's summed token loss over the step's target count: the step's loss is the mean over all its tokens.
            with half_precision:
                loss = model(**model_inputs(part), num_items_in_batch=targets).loss
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
        if step % spec.logging_steps == 0:
            window = result.train_losses[-spec.logging_steps :]
            log(step, {"loss": sum(loss for _, loss in window) / len(window), "learning_rate": scheduler.get_last_lr()[0]})

        stop = False
        if eval_set and (step % spec.eval_steps == 0 or step == steps):
            evaluation_started = time.perf_counter()
            eval_loss = evaluate(model, collate, eval_set, spec.batch_size)
            started += time.perf_counter() - evaluation_started  # training time leaves evaluations out
            result.eval_losses.append((step, eval_loss))
            log(step, {"eval_loss": eval_loss})
            if result.best_eval_loss is None or eval_loss < result.best_eval_loss:
                result.best_eval_loss, result.evals_without_improvement = eval_loss, 0
                if patience:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                result.evals_without_improvement += 1
                stop = bool(patience) and result.evals_without_improvement >= patience
        if checkpoint_dir is not None and spec.save_steps and step % spec.save_steps == 0 and step < steps and not stop:
            result.seconds = time.perf_counter() - started
            _save_checkpoint(checkpoint_dir, spec.save_total_limit, result, model, optimizer, scheduler, best_state)
        if stop:
            result.stopped_early = True
            break

    result.seconds = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)  # early stopping publishes the best weights, not the last
    return result


def _save_checkpoint(directory: Path, keep: int, result: LoopResult, model, optimizer, scheduler, best_state) -> None:
    """Write step-N so it appears complete or not at all, then drop all but the newest ``keep``."""
    import torch
    from safetensors.torch import save_file, save_model

    with atomic_directory(directory / f"step-{result.steps}", replace=True) as temporary:
        save_model(model, str(temporary / "model.safetensors"))  # handles GPT-2's tied embeddings
        if best_state is not None:
            save_file({k: v.contiguous() for k, v in best_state.items() if k != "lm_head.weight"}, str(temporary / "best.safetensors"))
        # Optimizer and scheduler state are the run's own files, read back with weights_only=True.
        torch.save(optimizer.state_dict(), temporary / "optimizer.pt")
        torch.save(scheduler.state_dict(), temporary / "scheduler.pt")
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():  # dropout on a GPU draws from the CUDA generators
            rng.update({f"cuda{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
        save_file(rng, str(temporary / "rng.safetensors"))
        (temporary / "loop_state.json").write_text(json.dumps(asdict(result)))
        seal_checkpoint(temporary)
    prune_checkpoints(directory, keep)
    for leftover in directory.glob(".step-*"):  # saves cut short by a killed process
        shutil.rmtree(leftover, ignore_errors=True)


def _load_checkpoint(path: Path, model, optimizer, scheduler) -> tuple[LoopResult, dict | None]:
    import torch
    from safetensors.torch import load_file, load_model

    load_model(model, str(path / "model.safetensors"))
    # The saved groups' settings come back with their state, `fused` included: a run checkpointed
    # before the loop fused its AdamW resumes with the update it started with.
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["torch"])
    if torch.cuda.is_available():
        torch.cuda.set_rng_state_all([rng[f"cuda{i}"] for i in range(torch.cuda.device_count()) if f"cuda{i}" in rng])
    state = json.loads((path / "loop_state.json").read_text())
    result = LoopResult(**{**state, "train_losses": [tuple(x) for x in state["train_losses"]], "eval_losses": [tuple(x) for x in state["eval_losses"]]})
    best_state = None
    if (path / "best.safetensors").is_file():
        best_state = load_file(str(path / "best.safetensors"))
        best_state["lm_head.weight"] = best_state["transformer.wte.weight"]
    return result, best_state


def _on(device, packed: dict[str, Any]) -> dict[str, Any]:
    return {name: tensor.to(device) for name, tensor in packed.items()}


def _loss(model, collate, batch: list[EncodedExample]):
    packed = _on(model.device, collate([{"input_ids": e.input_ids, "labels": e.labels} for e in batch]))
    return model(**model_inputs(packed)).loss


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
