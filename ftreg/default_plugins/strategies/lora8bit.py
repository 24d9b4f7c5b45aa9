"""`lora8bit`: LoRA adapters on a base loaded in 8-bit through bitsandbytes, trained with `Trainer`.

The base's weights stay frozen and quantized; only the low-rank matrices on GPT-2's attention and
MLP projections train, so memory is a fraction of a full fine-tune. The result is a standard PEFT
adapter (adapter_config.json + adapter_model.safetensors) that plain `PeftModel.from_pretrained`
loads onto the full-precision base.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ftreg.contract import StrategyOptions, TrainingStrategy, TrainJob, option
from ftreg.errors import ConfigError
from ftreg.hookspecs import hookimpl

# GPT-2's Conv1D projections: fused QKV, attention output, MLP in and out.
GPT2_TARGET_MODULES = ["c_attn", "c_proj", "c_fc"]


@dataclass(frozen=True)
class LoraOptions(StrategyOptions):
    r: int = option(8, "LoRA rank: the width of the low-rank update.")
    alpha: int = option(16, "LoRA scaling: the update is multiplied by alpha / r.")
    dropout: float = option(0.05, "Dropout on the LoRA input during training.")

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ConfigError(f"lora8bit option r must be >= 1, got {self.r!r}")
        if self.alpha < 1:
            raise ConfigError(f"lora8bit option alpha must be >= 1, got {self.alpha!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"lora8bit option dropout must be in [0, 1), got {self.dropout!r}")


class Lora8bitStrategy(TrainingStrategy):
    name = "lora8bit"
    kind = "adapter"
    description = "LoRA on an 8-bit base (bitsandbytes + peft), transformers Trainer"
    options_class = LoraOptions
    precisions = ("fp32", "bf16", "fp16")  # of the LoRA computation; the frozen base stays 8-bit

    def train(self, job: TrainJob) -> dict[str, float]:
        from ftreg.engines.quiet import bitsandbytes_noise_silenced

        with bitsandbytes_noise_silenced():  # from the import of peft (which imports bitsandbytes) to the last step
            return self._train(job)

    def _train(self, job: TrainJob) -> dict[str, float]:
        import torch
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

        from ftreg.engines.hf_trainer import run_trainer
        from ftreg.engines.quiet import no_loading_bars, peft_deprecations_silenced

        assert isinstance(job.options, LoraOptions)
        no_loading_bars()
        options = job.options
        device_map = {"": torch.cuda.current_device()} if torch.cuda.is_available() else {"": "cpu"}
        model: Any = AutoModelForCausalLM.from_pretrained(
            job.base.path, quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map=device_map
        )
        if not torch.cuda.is_available():
            # On CPU the unquantized tensors (embeddings, LayerNorms, biases) alias the memory-mapped
            # checkpoint, which keeps every page read during quantization resident. Copying them
            # releases the mapping: on a 124M model that is a third of the peak memory.
            for tensor in itertools.chain(model.parameters(), model.buffers()):
                if tensor.dtype != torch.int8:
                    tensor.data = tensor.data.clone()
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        lora = LoraConfig(
            r=options.r,
            lora_alpha=options.alpha,
            lora_dropout=options.dropout,
            target_modules=GPT2_TARGET_MODULES,
            # The full-precision GPT-2 stores Conv1D weights transposed; the adapter must say so
            # to merge correctly there (quantization turned them into Linear layers for training).
            fan_in_fan_out=True,
            task_type="CAUSAL_LM",
        )
        torch.manual_seed(job.spec.seed)  # LoRA's A matrices start random: the same seed must give the same adapter
        with peft_deprecations_silenced():
            model = get_peft_model(model, lora)
        # Name the base the way others can fetch it: a Hub id at its commit, else its reference
        # (a registry base gets a Hub home when the adapter is pushed with its base).
        config = model.peft_config["default"]
        config.base_model_name_or_path = job.base.source.get("repo_id", job.base.ref)
        config.revision = job.base.source.get("revision")
        metrics = run_trainer(model, job)
        # LoRA never trains the embeddings: saying so stops peft from fetching the base's config to check its vocabulary.
        model.save_pretrained(job.output_dir, save_embedding_layers=False)
        # The base's tokenizer travels with the adapter: AutoTokenizer.from_pretrained(adapter) works.
        AutoTokenizer.from_pretrained(job.base.path).save_pretrained(job.output_dir)
        return metrics


@hookimpl
def register_training_strategies(register: Callable[[TrainingStrategy], None]) -> None:
    register(Lora8bitStrategy())
