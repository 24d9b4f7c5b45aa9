"""`lora8bit`: LoRA adapters on a base loaded in 8-bit through bitsandbytes, trained with `Trainer`.

The base's weights stay frozen and quantized; only the low-rank matrices on GPT-2's attention and
MLP projections train, so memory is a fraction of a full fine-tune. The result is a standard PEFT
adapter (adapter_config.json + adapter_model.safetensors) that plain `PeftModel.from_pretrained`
loads onto the full-precision base.
"""

from __future__ import annotations

import itertools
import logging
import warnings

from ftreg.hookspecs import hookimpl
from ftreg.training.strategy import TrainingStrategy, TrainJob

# GPT-2's Conv1D projections: fused QKV, attention output, MLP in and out.
GPT2_TARGET_MODULES = ["c_attn", "c_proj", "c_fc"]


class Lora8bitStrategy(TrainingStrategy):
    name = "lora8bit"
    kind = "adapter"
    description = "LoRA on an 8-bit base (bitsandbytes + peft), transformers Trainer"

    def train(self, job: TrainJob) -> dict[str, float]:
        import torch
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        from ftreg.training.trainer import run_trainer

        spec = job.spec
        device_map = {"": torch.cuda.current_device()} if torch.cuda.is_available() else {"": "cpu"}
        model = AutoModelForCausalLM.from_pretrained(
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
            r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            target_modules=GPT2_TARGET_MODULES,
            # The full-precision GPT-2 stores Conv1D weights transposed; the adapter must say so
            # to merge correctly there (quantization turned them into Linear layers for training).
            fan_in_fan_out=True,
            task_type="CAUSAL_LM",
        )
        torch.manual_seed(spec.seed)  # LoRA's A matrices start random: the same seed must give the same adapter
        with warnings.catch_warnings():
            # peft calls a transformers API that transformers has deprecated; nothing a user can act on.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = get_peft_model(model, lora)
        model.peft_config["default"].base_model_name_or_path = job.base.source.get("repo_id", str(job.base.path))
        # bitsandbytes logs a cast warning on every CPU matmul: once is information, thousands are noise.
        bnb_logger = logging.getLogger("bitsandbytes")
        level = bnb_logger.level
        bnb_logger.setLevel(logging.ERROR)
        try:
            metrics = run_trainer(model, job)
        finally:
            bnb_logger.setLevel(level)
        model.save_pretrained(job.output_dir)
        return metrics


@hookimpl
def register_training_strategies(register):
    register(Lora8bitStrategy())
