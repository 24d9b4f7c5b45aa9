"""Shared pieces for strategies built on the transformers `Trainer`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ftreg.training.examples import IGNORE_INDEX, EncodedExample
from ftreg.training.flops import model_flops_utilisation
from ftreg.training.spec import TrainSpec
from ftreg.training.strategy import TrainJob

TRAINING_ARGS_FILE = "training_args.json"  # the effective arguments, as JSON: never a pickled .bin
TRAIN_LOG = "train_log.json"  # per-step losses: {"train": [[step, loss], ...], "eval": [...]}


def to_dataset(examples: list[EncodedExample]):
    from datasets import Dataset

    return Dataset.from_dict({"input_ids": [e.input_ids for e in examples], "labels": [e.labels for e in examples]})


def packing_collator():
    """Padding-free batches: each batch's examples are concatenated into one row.

    Positions restart at 0 for every example, and with no attention mask and no KV cache,
    transformers turns those position_ids into a block-diagonal causal mask, so packed examples
    never attend to each other (tests/test_packing.py checks the logits). The first label of
    every example is IGNORE_INDEX, so no example learns to predict across a boundary.
    """
    from transformers import DataCollatorWithFlattening

    return DataCollatorWithFlattening(separator_id=IGNORE_INDEX)


def training_arguments(spec: TrainSpec, output_dir: str, show_progress: bool, checkpoints: bool, **overrides):
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=spec.batch_size,
        per_device_eval_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.grad_accum,
        learning_rate=spec.learning_rate,
        num_train_epochs=spec.epochs,
        max_steps=spec.max_steps,
        lr_scheduler_type=spec.lr_scheduler,
        warmup_steps=spec.warmup_steps,
        max_grad_norm=spec.max_grad_norm,
        weight_decay=spec.weight_decay,
        seed=spec.seed,
        data_seed=spec.seed,
        logging_steps=spec.logging_steps,
        # Checkpoints exist to resume a run; the result goes to the registry.
        save_strategy="steps" if checkpoints else "no",
        save_steps=spec.save_steps or 1,  # ignored without checkpoints, but must be positive
        report_to="none",
        dataloader_pin_memory=torch.cuda.is_available(),  # pinning only helps copies to a GPU
        # Said explicitly on a CPU-only machine so that under torchrun accelerate picks gloo data parallelism.
        use_cpu=not (torch.cuda.is_available() or torch.backends.mps.is_available()),
        disable_tqdm=not show_progress,
        **overrides,
    )


def run_trainer(model, job: TrainJob, **argument_overrides) -> dict[str, float]:
    """Train ``model`` on the job's examples, write training_args.json, return metrics."""
    from transformers import Trainer

    model.config.use_cache = False  # a KV cache would disable the packed-sequence mask
    checkpoints = job.checkpoint_dir is not None and job.spec.save_steps > 0
    with tempfile.TemporaryDirectory(prefix="ftreg-trainer-") as scratch:
        callbacks = []
        output_dir = scratch
        if checkpoints:
            # The Trainer writes checkpoint-N in place; it writes into a staging directory instead,
            # and a callback renames each checkpoint into the run's directory once it is complete.
            output_dir = job.checkpoint_dir / ".staging"
            shutil.rmtree(output_dir, ignore_errors=True)  # what a killed save left behind
            output_dir.mkdir(parents=True)
            callbacks.append(_checkpoint_publisher(output_dir, job.checkpoint_dir, job.spec.save_total_limit))
        args = training_arguments(job.spec, str(output_dir), job.show_progress, checkpoints, **argument_overrides)
        trainer = Trainer(
            model=model, args=args, train_dataset=to_dataset(job.train), data_collator=packing_collator(), callbacks=callbacks
        )
        # Resuming restores weights, optimizer, scheduler, RNG states and the data position; the
        # Trainer reads those files with torch.load(weights_only=True), never as pickles.
        result = trainer.train(resume_from_checkpoint=str(job.resume_from) if job.resume_from else None)
        history = trainer.state.log_history
        runtime = result.metrics["train_runtime"]
        tokens_seen = sum(len(e.input_ids) for e in job.train) * trainer.state.epoch
        metrics = {
            "train_loss": result.training_loss,
            "train_runtime_s": runtime,
            "train_steps": result.global_step,
            "train_tokens_per_s": tokens_seen / runtime,
        }
        utilisation = model_flops_utilisation(model.num_parameters(), metrics["train_tokens_per_s"])
        if utilisation is not None:
            metrics["mfu"] = utilisation
        if job.eval:
            metrics["eval_loss"] = trainer.evaluate(to_dataset(job.eval))["eval_loss"]
    arguments = {key: value for key, value in args.to_dict().items() if key != "output_dir"}
    Path(job.output_dir, TRAINING_ARGS_FILE).write_text(json.dumps(arguments, indent=2, sort_keys=True, default=str) + "\n")
    train_log = {
        "train": [[entry["step"], entry["loss"]] for entry in history if "loss" in entry],
        "eval": [[entry["step"], entry["eval_loss"]] for entry in history if "eval_loss" in entry],
    }
    Path(job.output_dir, TRAIN_LOG).write_text(json.dumps(train_log) + "\n")
    return {key: round(float(value), 6) for key, value in metrics.items()}


def _checkpoint_publisher(staging: Path, checkpoints: Path, keep: int):
    """A callback that moves each complete checkpoint from ``staging`` into ``checkpoints`` by rename."""
    from transformers import TrainerCallback

    from ftreg.training.runs import prune_checkpoints

    class PublishCheckpoints(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            name = f"checkpoint-{state.global_step}"
            if (staging / name).is_dir():  # only the process that saves has one
                os.rename(staging / name, checkpoints / name)
                prune_checkpoints(checkpoints, keep)

    return PublishCheckpoints()
