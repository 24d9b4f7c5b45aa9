"""`scratch`: a hand-written PyTorch training loop (no `Trainer`), publishing a full checkpoint.

Starts from the base's weights, or with ``-o init=...`` from random weights: ``config:tiny``
(the embedded base's shape) or a GPT-2 ``config.json``. The tokenizer always comes from the base.
Saves a loss curve (loss.png) and the per-step losses (train_log.json) with the version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftreg.contract import StrategyOptions, TrainingStrategy, TrainJob, TrainSpec, option
from ftreg.errors import ConfigError
from ftreg.hookspecs import hookimpl

PRESETS = {"tiny": {"n_positions": 256, "n_embd": 128, "n_layer": 4, "n_head": 4}}


@dataclass(frozen=True)
class ScratchOptions(StrategyOptions):
    patience: int = option(0, "Stop after N evaluations without improvement and keep the best weights (0: never).")
    init: str | None = option(None, "Start from random weights instead of the base's: config:tiny or a GPT-2 config.json.")

    def __post_init__(self) -> None:
        if self.patience < 0:
            raise ConfigError(f"scratch option patience must be >= 0, got {self.patience!r}")
        if self.init is not None:
            _init_settings(self.init)  # an unknown preset or unreadable file fails here, before anything loads


class ScratchStrategy(TrainingStrategy):
    name = "scratch"
    kind = "checkpoint"
    description = "hand-written PyTorch loop; from a base or from random weights (-o init=...)"
    options_class = ScratchOptions
    precisions = ("fp32", "bf16")  # bf16 autocast needs no loss scaling, so its loop stays small

    def check(self, spec: TrainSpec) -> None:
        options = self.options(spec)
        assert isinstance(options, ScratchOptions)
        if options.patience and not (spec.eval_split or spec.eval_dataset):
            raise ConfigError("scratch option patience needs held-out examples to evaluate on; set `eval_split` or `eval_dataset`")
        init = options.init
        if init:
            positions = _init_settings(init).get("n_positions", 1024)  # GPT2Config's default
            if positions < spec.max_length:
                raise ConfigError(f"init {init!r} has n_positions {positions}, fewer than `max_length` {spec.max_length}; lower `max_length`")

    def train(self, job: TrainJob) -> dict[str, float]:
        import torch
        from tqdm.auto import tqdm
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ftreg.engines.batching import packed_training
        from ftreg.engines.loop import train_loop
        from ftreg.engines.metrics import finish_metrics, write_loss_log
        from ftreg.engines.optim import total_steps
        from ftreg.engines.quiet import no_loading_bars

        assert isinstance(job.options, ScratchOptions)
        no_loading_bars()
        spec, options = job.spec, job.options
        tokenizer = AutoTokenizer.from_pretrained(job.base.path)
        if options.init:
            model = _initialised(options.init, tokenizer, spec.seed)
        else:
            model = AutoModelForCausalLM.from_pretrained(job.base.path, dtype=torch.float32)
        model.config.use_cache = False  # a KV cache would disable the packed-sequence mask
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model.to(device)
        steps = total_steps(len(job.train), spec.batch_size, spec.grad_accum, spec.epochs, spec.max_steps)
        with tqdm(total=steps, desc="Training", unit="step", disable=not job.show_progress) as progress:
            with packed_training(model):
                result = train_loop(
                    model, spec, job.train, job.eval,
                    patience=options.patience, progress=progress, checkpoint_dir=job.checkpoint_dir, resume_from=job.resume_from, log=job.log,
                )
        if result.stopped_early:
            job.notify(f"scratch: eval loss stopped improving; stopped at step {result.steps}, kept the best weights")

        model.config.use_cache = True  # for generation
        model.to("cpu").save_pretrained(job.output_dir)
        tokenizer.save_pretrained(job.output_dir)
        write_loss_log(job.output_dir, result.train_losses, result.eval_losses)
        metrics: dict[str, Any] = {
            "train_loss": result.train_losses[-1][1],
            "train_steps": result.steps,
            "train_runtime_s": result.seconds,
            "train_tokens_per_s": result.tokens / result.seconds,
            "parameters": model.num_parameters(),
        }
        if result.best_eval_loss is not None:
            metrics["eval_loss"] = result.best_eval_loss
        return finish_metrics(metrics, model.num_parameters())


def _init_settings(init: str) -> dict[str, Any]:
    """GPT2Config fields from ``config:PRESET`` or a config.json file."""
    if init.startswith("config:"):
        preset = init.removeprefix("config:")
        if preset not in PRESETS:
            raise ConfigError(f"init {init!r}: unknown preset; available: {', '.join('config:' + p for p in PRESETS)}")
        return PRESETS[preset]
    path = Path(init)
    if not path.is_file():
        raise ConfigError(f"init {init!r}: expected config:PRESET or a GPT-2 config.json file")
    try:
        settings = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"init {init!r}: not a JSON config: {error}") from error
    if not isinstance(settings, dict):
        raise ConfigError(f"init {init!r}: expected a JSON object of GPT2Config fields")
    return settings


def _initialised(init: str, tokenizer: Any, seed: int) -> Any:
    """A randomly initialised GPT-2 from a preset or a config file, sized to the base's tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    eos = tokenizer.eos_token_id
    config = GPT2Config(**{**_init_settings(init), "vocab_size": len(tokenizer), "bos_token_id": eos, "eos_token_id": eos})
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


@hookimpl
def register_training_strategies(register: Callable[[TrainingStrategy], None]) -> None:
    register(ScratchStrategy())
