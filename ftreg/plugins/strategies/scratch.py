"""`scratch`: a hand-written PyTorch training loop (no `Trainer`), publishing a full checkpoint.

Starts from the base's weights, or with ``--init`` from random weights: ``config:tiny`` (the
embedded base's shape) or a GPT-2 ``config.json``. The tokenizer always comes from the base.
Saves a loss curve (loss.png) and the per-step losses (train_log.json) with the version.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftreg.errors import ConfigError
from ftreg.hookspecs import hookimpl
from ftreg.training.spec import TrainSpec
from ftreg.training.strategy import TrainingStrategy, TrainJob

PRESETS = {"tiny": {"n_positions": 256, "n_embd": 128, "n_layer": 4, "n_head": 4}}
LOSS_CURVE = "loss.png"


class ScratchStrategy(TrainingStrategy):
    name = "scratch"
    kind = "checkpoint"
    description = "hand-written PyTorch loop; from a base or from random weights (--init)"

    def check(self, spec: TrainSpec) -> None:
        if spec.init:
            positions = _init_settings(spec.init).get("n_positions", 1024)  # GPT2Config's default
            if positions < spec.max_length:
                raise ConfigError(f"init {spec.init!r} has n_positions {positions}, fewer than --max-length {spec.max_length}; lower --max-length")

    def train(self, job: TrainJob) -> dict[str, float]:
        import torch
        from tqdm.auto import tqdm
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ftreg.training.flops import model_flops_utilisation
        from ftreg.training.loop import plot_losses, total_steps, train_loop
        from ftreg.training.trainer import TRAIN_LOG

        tokenizer = AutoTokenizer.from_pretrained(job.base.path)
        if job.spec.init:
            model = _initialised(job.spec.init, tokenizer, job.spec.seed)
        else:
            model = AutoModelForCausalLM.from_pretrained(job.base.path, dtype=torch.float32)
        model.config.use_cache = False  # a KV cache would disable the packed-sequence mask
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model.to(device)
        with tqdm(total=total_steps(job.spec, len(job.train)), desc="Training", unit="step", disable=not job.show_progress) as progress:
            result = train_loop(model, job.spec, job.train, job.eval, progress, job.checkpoint_dir, job.resume_from)
        if result.stopped_early:
            job.notify(f"scratch: eval loss stopped improving; stopped at step {result.steps}, kept the best weights")

        model.config.use_cache = True  # for generation
        model.to("cpu").save_pretrained(job.output_dir)
        tokenizer.save_pretrained(job.output_dir)
        plot_losses(result, job.output_dir / LOSS_CURVE)
        Path(job.output_dir, TRAIN_LOG).write_text(json.dumps({"train": result.train_losses, "eval": result.eval_losses}) + "\n")

        tokens_per_s = result.tokens / result.seconds
        metrics = {
            "train_loss": result.train_losses[-1][1],
            "train_steps": result.steps,
            "train_runtime_s": result.seconds,
            "train_tokens_per_s": tokens_per_s,
            "parameters": model.num_parameters(),
        }
        if result.best_eval_loss is not None:
            metrics["eval_loss"] = result.best_eval_loss
        if (utilisation := model_flops_utilisation(model.num_parameters(), tokens_per_s)) is not None:
            metrics["mfu"] = utilisation
        return {key: round(float(value), 6) for key, value in metrics.items()}


def _init_settings(init: str) -> dict:
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


def _initialised(init: str, tokenizer, seed: int):
    """A randomly initialised GPT-2 from a preset or a config file, sized to the base's tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    eos = tokenizer.eos_token_id
    config = GPT2Config(**{**_init_settings(init), "vocab_size": len(tokenizer), "bos_token_id": eos, "eos_token_id": eos})
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


@hookimpl
def register_training_strategies(register):
    register(ScratchStrategy())
