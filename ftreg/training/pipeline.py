"""The `ftreg train` pipeline: dataset -> examples -> strategy -> published version.

Everything that can be wrong with the user's input is checked before the base is loaded, so a
mistake costs seconds, not a training run; nothing is published unless training finished.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftreg import plugins
from ftreg.bases.resolve import context_length, resolve_base
from ftreg.card import write_model_card
from ftreg.contract import TrainJob, TrainSpec
from ftreg.datasets.encoding import encode, nothing_to_train, split
from ftreg.datasets.loading import LoadedDataset, load_dataset
from ftreg.datasets.tokenizer import load_encoder
from ftreg.engines.precision import check_precision, choose_precision
from ftreg.errors import ArtifactError, ConfigError, TrainingDiverged
from ftreg.registry import Entry, Registry
from ftreg.training.config import upgrade_settings, with_strategy_options
from ftreg.training.runs import Run, load_run, start_run


def quiet(message: str) -> None:
    """A ``notify`` that says nothing."""


def train(
    spec: TrainSpec,
    registry: Registry,
    show_progress: bool = True,
    notify: Callable[[str], None] = quiet,
    parent: Entry | None = None,
    resume: Run | None = None,
) -> Entry | None:
    """Train and publish; ``notify`` receives one-line notes worth a user's attention.

    ``parent`` is the version whose settings this run re-used (`ftreg train --from`), kept as
    lineage. ``resume`` continues an interrupted run from its newest complete checkpoint.
    Returns None on the ranks of a distributed run that do not publish.
    """
    spec, strategy, options = with_strategy_options(spec)
    strategy.check(spec)
    check_precision(spec.precision, strategy.name, strategy.precisions)
    dataset = load_dataset(spec.dataset, spec.format, spec.columns)
    eval_dataset = load_dataset(spec.eval_dataset, dataset.format.name, spec.columns) if spec.eval_dataset else None
    # The record names the data so that `--from` finds it from any directory, and pins the format
    # that was detected, so a re-run reads the file the same way or refuses by name.
    spec = spec.replace(
        dataset=dataset.reference, format=dataset.format.name, eval_dataset=eval_dataset.reference if eval_dataset else None
    )
    for loaded in filter(None, (dataset, eval_dataset)):
        _notify_about(loaded, notify)
    # Asked before training, so that a format's mistake here costs no run.
    system_prompt = dataset.format.system_prompt(dataset.examples)
    prompt_template = dataset.format.generation_template(system_prompt)

    precision = choose_precision(spec.precision, strategy.name, strategy.precisions)
    if spec.precision == "auto" and precision != "fp32":
        notify(f"precision: {precision} mixed (fp32 weights), the fastest this machine computes; --precision fp32 for full precision")
    spec = spec.replace(precision=precision)  # the record keeps what was used, not "auto"
    base = resolve_base(spec.base, registry)
    tokenizer = load_encoder(base.path)
    max_length = min(spec.max_length, context_length(base.path))
    encoded, truncated = encode(dataset.examples, tokenizer, max_length)
    if eval_dataset is None:
        train_set, eval_set = split(encoded, spec.eval_split, spec.seed)
    else:
        train_set = encoded
        eval_set, eval_truncated = encode(eval_dataset.examples, tokenizer, max_length)
        truncated += eval_truncated
    if truncated:
        notify(f"{truncated} examples are longer than {max_length} tokens and were truncated (`max_length`)")
    if not train_set:
        raise nothing_to_train(dataset.path, max_length)
    if spec.save_steps and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("`save_steps` is not supported in a distributed launch yet: checkpoints need every rank's state in one run directory")
    if resume is not None and resume.record.get("dataset_fingerprint") not in (None, dataset.fingerprint):
        raise ConfigError(f"{dataset.path} has changed since run {resume.id} started; resuming would train on different data")

    run = None
    resume_from = None
    if resume is not None:
        resume.lock()  # two `--resume` of one run would overwrite each other's checkpoints
        resume_from = resume.checkpoint_to_resume(notify)
        if resume_from is None:
            resume.unlock()
            raise ConfigError(f"run {resume.id} has no undamaged checkpoint to resume from")
    if is_main_process():  # one run record per training, kept by the rank that publishes
        run = resume or start_run(registry, spec.to_dict(), parent.ref if parent else None)
        if resume is None:
            run.lock()
        run.update(status="running", pid=os.getpid(), host=socket.gethostname(), error=None, dataset_fingerprint=dataset.fingerprint)
        notify(f"run {run.id}" + (f": resuming from {resume_from.name}" if resume_from else ""))
    try:
        with registry.staging() as out:
            def log(step: int, metrics: dict[str, float]) -> None:
                plugins.call("on_train_log", job=job, step=step, metrics=metrics)

            job = TrainJob(
                spec=spec,
                options=options,
                base=base,
                train=train_set,
                eval=eval_set,
                output_dir=out,
                show_progress=show_progress,
                notify=notify,
                checkpoint_dir=run.checkpoint_dir if run else None,
                resume_from=resume_from,
                log=log,
            )
            plugins.call("on_train_start", job=job)
            metrics = {**strategy.train(job), "truncated_examples": truncated}
            if not all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in metrics.values()):
                raise ArtifactError(f"strategy {strategy.name!r} returned metrics that are not all numbers: {metrics!r}")
            diverged = [f"{key}={value}" for key, value in sorted(metrics.items()) if not math.isfinite(value)] + _non_finite_weights(out)
            if diverged:
                raise TrainingDiverged(f"training diverged ({', '.join(diverged)}); nothing was published: lower `learning_rate` or `max_grad_norm`")
            plugins.call("on_train_end", job=job, metrics=metrics)
            if run is None:
                return None  # under torchrun/accelerate every rank trains; rank 0 publishes
            if spec.eval_generate and eval_set:
                from ftreg.evaluation.heldout import heldout_scores

                metrics.update(heldout_scores(base, out, strategy.kind, eval_set[: spec.eval_generate]))
            described = {
                **dataset.describe(),
                "eval": eval_dataset.describe() if eval_dataset else f"{spec.eval_split:g} split",
                "train_examples": len(train_set),
                "eval_examples": len(eval_set),
            }
            record: dict[str, Any] = {
                "name": spec.name,
                "kind": strategy.kind,
                "base": base.ref,
                "strategy": strategy.name,
                "dataset": described,
                "config": spec.to_dict(),
                "metrics": metrics,
                "plugin_versions": {
                    f"strategy:{strategy.name}": plugins.provider(plugins.TRAINING_STRATEGY, strategy.name),
                    f"format:{dataset.format.name}": plugins.provider(plugins.DATASET_FORMAT, dataset.format.name),
                },
                "base_fingerprint": base.fingerprint,
                "base_source": base.source,
                # What generation needs to render prompts as this data was rendered, without reading it again.
                "prompt_template": prompt_template,
                "system_prompt": system_prompt,
                "parent": parent.ref if parent else None,
                "run": run.id,
            }
            write_model_card(out, record)
            entry = registry.publish(out, **record)
        run.update(status="finished", published=entry.ref)
    except BaseException as error:
        if run is not None:
            run.update(status="failed", error=f"{type(error).__name__}: {error}")
        raise
    finally:
        for held in (run, resume):
            if held is not None:
                held.unlock()
    return entry


def _non_finite_weights(directory: Path) -> list[str]:
    """The weight files in ``directory`` holding NaN or infinity: a version made of them is no model."""
    import torch
    from safetensors import safe_open

    found = []
    for file in sorted(directory.glob("*.safetensors")):
        with safe_open(str(file), "pt") as weights:
            if not all(bool(torch.isfinite(weights.get_tensor(name)).all()) for name in weights.keys()):
                found.append(f"{file.name}=non-finite")
    return found


def resume(
    run_id: str, registry: Registry, show_progress: bool = True, notify: Callable[[str], None] = quiet
) -> Entry | None:
    """Continue an interrupted or failed run from its newest complete checkpoint, with the settings it started with."""
    run = load_run(registry, run_id)  # a run killed after it published reads as finished
    if run.status == "finished" and run.record.get("published"):
        raise ConfigError(f"run {run.id} already published {run.record['published']}; resuming would publish it twice")
    if not run.resumable:
        raise ConfigError(f"run {run.id} is {run.status}; only an interrupted or failed run with a checkpoint can be resumed")
    spec = TrainSpec.from_dict(upgrade_settings(run.record["settings"], f"run {run.id}"))
    parent = registry.resolve(run.record["parent"]) if run.record.get("parent") else None
    return train(spec, registry, show_progress=show_progress, notify=notify, parent=parent, resume=run)


def is_main_process() -> bool:
    """False on every rank but 0 of a distributed launch (torchrun and accelerate set RANK)."""
    return int(os.environ.get("RANK", "0")) == 0


def _notify_about(dataset: LoadedDataset, notify: Callable[[str], None]) -> None:
    if dataset.detected:
        notify(f"{dataset.path}: detected format {dataset.format.name!r}")
    if dataset.duplicate_lines:
        lines = ", ".join(map(str, dataset.duplicate_lines[:10])) + (", ..." if len(dataset.duplicate_lines) > 10 else "")
        notify(f"warning: {dataset.path}: {len(dataset.duplicate_lines)} duplicate examples (lines {lines})")
