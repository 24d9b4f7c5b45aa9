"""`full-fp16`: fine-tune every weight with the transformers `Trainer`.

On CUDA: FP16 mixed precision (fp32 master weights, loss scaling) and fused AdamW. Without
CUDA there is no fast FP16 path, so it trains in fp32 and says so. Publishes a checkpoint that
plain `AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained` load.
"""

from __future__ import annotations

from collections.abc import Callable

from ftreg.contract import TrainingStrategy, TrainJob
from ftreg.hookspecs import hookimpl


class FullFp16Strategy(TrainingStrategy):
    name = "full-fp16"
    kind = "checkpoint"
    description = "full fine-tune, FP16 mixed precision and fused AdamW on CUDA (fp32 on CPU)"

    def train(self, job: TrainJob) -> dict[str, float]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ftreg.engines.hf_trainer import run_trainer
        from ftreg.engines.quiet import no_loading_bars

        no_loading_bars()

        if torch.cuda.is_available():
            precision = {"fp16": True, "optim": "adamw_torch_fused"}
        else:
            job.notify("full-fp16: no CUDA device, so training runs in fp32 (FP16 mixed precision needs a GPU)")
            precision = {}
        model = AutoModelForCausalLM.from_pretrained(job.base.path, dtype=torch.float32)
        metrics = run_trainer(model, job, **precision)
        model.save_pretrained(job.output_dir)
        AutoTokenizer.from_pretrained(job.base.path).save_pretrained(job.output_dir)
        return metrics


@hookimpl
def register_training_strategies(register: Callable[[TrainingStrategy], None]) -> None:
    register(FullFp16Strategy())
