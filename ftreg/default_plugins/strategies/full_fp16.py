"""`full-fp16`: fine-tune every weight with the transformers `Trainer`, in mixed precision where the machine has it.

On CUDA: FP16 mixed precision (fp32 master weights, loss scaling) and fused AdamW. On a CPU that
computes bf16 natively: bf16 mixed precision. Elsewhere fp32, and it says so (`precision` picks
another). Publishes a checkpoint that plain `AutoModelForCausalLM.from_pretrained` and
`AutoTokenizer.from_pretrained` load.
"""

from __future__ import annotations

from collections.abc import Callable

from ftreg.contract import TrainingStrategy, TrainJob
from ftreg.hookspecs import hookimpl


class FullFp16Strategy(TrainingStrategy):
    name = "full-fp16"
    kind = "checkpoint"
    description = "full fine-tune, FP16 mixed precision and fused AdamW on CUDA (bf16 or fp32 on CPU)"
    precisions = ("fp32", "bf16", "fp16")

    def train(self, job: TrainJob) -> dict[str, float]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ftreg.engines.hf_trainer import run_trainer
        from ftreg.engines.quiet import no_loading_bars

        no_loading_bars()

        if job.spec.precision == "fp32" and not torch.cuda.is_available():
            job.notify("full-fp16: training runs in fp32 (no CUDA device, and this CPU has no native bf16)")
        fused = {"optim": "adamw_torch_fused"} if torch.cuda.is_available() else {}
        model = AutoModelForCausalLM.from_pretrained(job.base.path, dtype=torch.float32)
        metrics = run_trainer(model, job, **fused)
        model.save_pretrained(job.output_dir)
        AutoTokenizer.from_pretrained(job.base.path).save_pretrained(job.output_dir)
        return metrics


@hookimpl
def register_training_strategies(register: Callable[[TrainingStrategy], None]) -> None:
    register(FullFp16Strategy())
