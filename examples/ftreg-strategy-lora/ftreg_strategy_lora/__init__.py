"""ftreg plugin: `lora-fp32`, LoRA on the full-precision base in a plain PyTorch loop.

Only ftreg's public plugin contract is used: the options dataclass, `TrainJob` (encoded examples
in, the artifact written to `output_dir`), and `job.log` for every logged step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ftreg import hookimpl
from ftreg.contract import IGNORE_INDEX, StrategyOptions, TrainingStrategy, TrainJob, option
from ftreg.errors import ConfigError

FTREG_PLUGIN_API = 1


@dataclass(frozen=True)
class LoraFp32Options(StrategyOptions):
    r: int = option(8, "LoRA rank.")
    alpha: int = option(16, "LoRA scaling: the update is multiplied by alpha / r.")

    def __post_init__(self) -> None:
        for name in ("r", "alpha"):
            if getattr(self, name) < 1:
                raise ConfigError(f"lora-fp32 option {name} must be >= 1, got {getattr(self, name)!r}")


class LoraFp32Strategy(TrainingStrategy):
    name = "lora-fp32"
    kind = "adapter"
    description = "LoRA on the full-precision base, a plain PyTorch loop (example plugin)"
    options_class = LoraFp32Options

    def train(self, job: TrainJob) -> dict[str, float]:
        import warnings

        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as transformers_logging

        assert isinstance(job.options, LoraFp32Options)
        spec = job.spec
        torch.manual_seed(spec.seed)
        transformers_logging.disable_progress_bar()  # a loading bar for a model this size says nothing
        model = AutoModelForCausalLM.from_pretrained(job.base.path)
        model.loss_type = "ForCausalLM"  # GPT-2 names no loss type, and transformers warns of that at every step
        # GPT-2's projections are Conv1D, which store weights transposed: the adapter must say so.
        lora = LoraConfig(r=job.options.r, lora_alpha=job.options.alpha, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True, task_type="CAUSAL_LM")
        with warnings.catch_warnings():  # peft calls a transformers API that transformers has deprecated
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = get_peft_model(model, lora)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=spec.learning_rate)
        order = random.Random(spec.seed)
        steps = spec.max_steps if spec.max_steps > 0 else max(1, int(len(job.train) * spec.epochs) // spec.batch_size)
        model.train()
        loss = torch.tensor(0.0)
        for step in range(1, steps + 1):
            batch = order.sample(job.train, min(spec.batch_size, len(job.train)))
            width = max(len(example.input_ids) for example in batch)
            input_ids = torch.tensor([e.input_ids + [0] * (width - len(e.input_ids)) for e in batch])
            labels = torch.tensor([e.labels + [IGNORE_INDEX] * (width - len(e.labels)) for e in batch])
            mask = torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in batch])
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
            if step % spec.logging_steps == 0 or step in (1, steps):
                job.log(step, {"loss": loss.item()})
        model.save_pretrained(job.output_dir)
        return {"train_loss": loss.item(), "steps": steps}


@hookimpl
def register_training_strategies(register):
    register(LoraFp32Strategy())
