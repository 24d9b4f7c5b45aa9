"""The transformers `Trainer` engine, for strategies that train with it (lora8bit, full-fp16).

It honours every shared setting the spec records: evaluation every ``eval_steps`` and logging
every ``logging_steps`` (plus the first and last step, so a short run still has a loss curve),
checkpoints every ``save_steps``, and exact resume.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ftreg.contract import TrainJob, TrainSpec
from ftreg.engines.batching import model_inputs, packed_training, packing_collator, split_packed, step_budget, to_dataset
from ftreg.engines.checkpoints import prune_checkpoints, seal_checkpoint
from ftreg.engines.metrics import finish_metrics, write_loss_log
from ftreg.files import replace_directory

TRAINING_ARGS_FILE = "training_args.json"  # the effective arguments, as JSON: never a pickled .bin


def training_arguments(spec: TrainSpec, output_dir: str, show_progress: bool, checkpoints: bool, evaluates: bool, **overrides: Any) -> Any:
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        # The Trainer gets each optimizer step's examples as one batch, and `training_step` cuts it into
        # micro-batches by tokens (`step_budget`): the same examples per step in the same order, the
        # same token-weighted loss, in fewer and fuller forward passes than batch_size examples each.
        per_device_train_batch_size=spec.batch_size * spec.grad_accum,
        per_device_eval_batch_size=spec.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=spec.learning_rate,
        num_train_epochs=spec.epochs,
        max_steps=spec.max_steps,
        lr_scheduler_type=spec.lr_scheduler,
        bf16=spec.precision == "bf16",  # autocast: fp32 weights and optimizer, half-precision matmuls
        fp16=spec.precision == "fp16",
        warmup_steps=spec.warmup_steps,
        max_grad_norm=spec.max_grad_norm,
        weight_decay=spec.weight_decay,
        seed=spec.seed,
        data_seed=spec.seed,
        logging_steps=spec.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if evaluates else "no",
        eval_steps=spec.eval_steps,
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


def run_trainer(model: Any, job: TrainJob, **argument_overrides: Any) -> dict[str, float]:
    """Train ``model`` on the job's examples; write training_args.json, train_log.json and loss.png; return metrics."""
    from transformers import Trainer

    model.config.use_cache = False  # a KV cache would disable the packed-sequence mask
    checkpoints = job.checkpoint_dir is not None and job.spec.save_steps > 0
    evaluates = bool(job.eval)
    # Inside the job's staging directory: a killed run's scratch goes when the registry sweeps the stage.
    with tempfile.TemporaryDirectory(prefix=".trainer-", dir=job.output_dir) as scratch:
        totals = _run_totals(job.resume_from)
        callbacks: list[Any] = [_log_bridge(job), totals]
        output_dir: Path | str = scratch
        if checkpoints:
            assert job.checkpoint_dir is not None
            # The Trainer writes checkpoint-N in place; it writes into a staging directory instead,
            # and a callback renames each checkpoint into the run's directory once it is complete.
            output_dir = job.checkpoint_dir / ".staging"
            shutil.rmtree(output_dir, ignore_errors=True)  # what a killed save left behind
            output_dir.mkdir(parents=True)
            callbacks.append(_checkpoint_publisher(output_dir, job.checkpoint_dir, job.spec.save_total_limit))
        args = training_arguments(job.spec, str(output_dir), job.show_progress, checkpoints, evaluates, **argument_overrides)
        trainer = _step_trainer(Trainer, step_budget(job.spec.batch_size, job.spec.max_length))(
            model=model,
            args=args,
            train_dataset=to_dataset(job.train),
            eval_dataset=to_dataset(job.eval) if evaluates else None,
            data_collator=packing_collator(),
            callbacks=callbacks,
        )
        totals.trainer = trainer
        _one_progress_bar(trainer, job.show_progress)
        # Resuming restores weights, optimizer, scheduler, RNG states and the data position; the
        # Trainer reads those files with torch.load(weights_only=True), never as pickles.
        with packed_training(model):
            result = trainer.train(resume_from_checkpoint=str(job.resume_from) if job.resume_from else None)
        # A resumed run reports what an uninterrupted one would: the loss averaged over every step,
        # and throughput over the whole run's tokens and time, not only this process's share.
        runtime = totals.runtime_s()
        history: list[dict[str, Any]] = trainer.state.log_history
        if evaluates and not any(entry.get("step") == result.global_step and "eval_loss" in entry for entry in history):
            with packed_training(model):
                trainer.evaluate()  # the final weights' eval loss, unless the last step evaluated already
        evaluations = [(entry["step"], entry["eval_loss"]) for entry in history if "eval_loss" in entry]
        tokens_seen = sum(len(e.input_ids) for e in job.train) * trainer.state.epoch
        metrics: dict[str, Any] = {
            "train_loss": totals.loss_sum() / max(result.global_step, 1),
            "train_runtime_s": runtime,
            "train_steps": result.global_step,
            "train_tokens_per_s": tokens_seen / runtime,
        }
        if evaluations:
            metrics["eval_loss"] = evaluations[-1][1]
    arguments = {key: value for key, value in args.to_dict().items() if key != "output_dir"}
    Path(job.output_dir, TRAINING_ARGS_FILE).write_text(json.dumps(arguments, indent=2, sort_keys=True, default=str) + "\n")
    write_loss_log(job.output_dir, [(entry["step"], entry["loss"]) for entry in history if "loss" in entry], evaluations)
    return finish_metrics(metrics, model.num_parameters())


TOTALS_FILE = "ftreg_totals.json"  # in each checkpoint: the run's loss sum and runtime so far


def _step_trainer(trainer_class: Any, token_budget: int) -> Any:
    """The Trainer, computing each step in micro-batches of at most ``token_budget`` tokens and
    summing every step's loss as the Trainer does for its own average."""

    class StepTrainer(trainer_class):
        step_loss_sum: Any = 0.0  # a tensor once training starts: no device sync per step
        evaluation_s = 0.0  # time spent evaluating, which the run's training time leaves out

        def evaluate(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super().evaluate(*args, **kwargs)
            finally:
                self.evaluation_s += time.perf_counter() - started

        @functools.cached_property
        def _weights_counted(self) -> int:
            return int(self.model.num_parameters(exclude_embeddings=True))

        def floating_point_ops(self, inputs: dict[str, Any]) -> int:
            # The Trainer's 6 x tokens x weights, without walking every parameter at every step for a count that never changes.
            if "input_ids" in inputs and hasattr(self.model, "num_parameters"):
                return 6 * inputs["input_ids"].numel() * self._weights_counted
            return 0

        def compute_loss(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            return super().compute_loss(model, model_inputs(inputs), *args, **kwargs)

        def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
            parts = split_packed(inputs, token_budget)
            # With the step's label count, each part's loss is its share of the step's token mean;
            # a model that takes no count averages the parts' means instead, as accumulation would.
            self.current_gradient_accumulation_steps = len(parts)
            loss = sum(super(StepTrainer, self).training_step(model, part, num_items_in_batch) for part in parts)
            self.step_loss_sum = self.step_loss_sum + loss.detach()
            return loss

    return StepTrainer


def _run_totals(resume_from: Path | None) -> Any:
    """A callback keeping the run's loss sum and runtime, continued from a checkpoint and written into each new one."""
    from transformers import TrainerCallback

    prior = json.loads((resume_from / TOTALS_FILE).read_text()) if resume_from and (resume_from / TOTALS_FILE).is_file() else {}

    class RunTotals(TrainerCallback):
        trainer: Any = None  # set once the Trainer exists
        started = time.perf_counter()

        def loss_sum(self) -> float:
            return float(prior.get("loss_sum", 0.0)) + float(self.trainer.step_loss_sum)

        def runtime_s(self) -> float:
            """Seconds spent training, evaluations left out: tokens/s is a rate of training."""
            return float(prior.get("runtime_s", 0.0)) + time.perf_counter() - self.started - self.trainer.evaluation_s

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if checkpoint.is_dir():  # only the process that saves has one
                totals = {"loss_sum": self.loss_sum(), "runtime_s": self.runtime_s(), "step": state.global_step}
                (checkpoint / TOTALS_FILE).write_text(json.dumps(totals) + "\n")

    return RunTotals()


def _one_progress_bar(trainer: Any, show: bool) -> None:
    """Keep the Trainer's training bar, without the dicts it prints at every log or a bar per evaluation:
    the run's numbers reach the user in the summary at the end, and plugins through on_train_log."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class TrainingBar(ProgressCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if self.training_bar is not None and logs and "loss" in logs:
                self.training_bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)

        def on_prediction_step(self, args: Any, state: Any, control: Any, eval_dataloader: Any = None, **kwargs: Any) -> None:
            pass

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)  # what the Trainer prints instead of a bar: the same dicts, as strings
    if show:
        trainer.add_callback(TrainingBar())


def _log_bridge(job: TrainJob) -> Any:
    """A callback that passes the Trainer's logs to ``job.log`` (and so to plugins' on_train_log),
    and makes sure the last step is logged, so a run shorter than logging_steps still has a curve."""
    from transformers import TrainerCallback

    class LogBridge(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step >= state.max_steps:
                control.should_log = True

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            numbers = {key: float(value) for key, value in (logs or {}).items() if isinstance(value, (int, float))}
            if numbers and state.is_world_process_zero:
                job.log(state.global_step, numbers)

    return LogBridge()


def _checkpoint_publisher(staging: Path, checkpoints: Path, keep: int) -> Any:
    """A callback that moves each complete checkpoint from ``staging`` into ``checkpoints`` by rename."""
    from transformers import TrainerCallback

    class PublishCheckpoints(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            name = f"checkpoint-{state.global_step}"
            if (staging / name).is_dir():  # only the process that saves has one
                seal_checkpoint(staging / name)
                replace_directory(staging / name, checkpoints / name)  # one an earlier attempt left goes
                prune_checkpoints(checkpoints, keep)

    return PublishCheckpoints()
