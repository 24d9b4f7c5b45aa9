"""One model, one strategy: ftreg train and three baselines on the same examples, alternated in one process.

The contenders train the same model set-up (LoRA on the 8-bit base, or every weight in fp32) with
the same hyperparameters (batch 2 x accumulation 4, AdamW at 2e-4, linear decay, one epoch) on the
same encoded examples; what differs is how batches are built and who runs the loop:

- ``padded``: the tutorial's `Trainer`, every example padded to ``max_length``;
- ``careful``: a careful user's `Trainer`, padding to the longest in each batch, batches grouped by length
  (``careful-bf16``: the same with `bf16=True`, which a user must know to ask for);
- ``bare``: a bare PyTorch loop over ftreg's own packed batches (ftreg's overhead is the difference);
- ``ftreg``: `ftreg.train` itself, in this process, into a throwaway registry (``scratch``: with the
  scratch strategy, beside full-fp16's bare loop).

Prints one JSON line per run, and first this process's matmul peaks in fp32 and bf16.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

BATCH, ACCUM, LR, MAX_LENGTH, SEED = 2, 4, 2e-4, 256, 42


def matmul_peak_gflops(dtype: torch.dtype, size: int = 2048, repeat: int = 10) -> float:
    """The best `torch.mm` rate of three tries at ``dtype``, in GFLOP/s: this machine's practical peak."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            torch.mm(a, b)
        best = max(best, 2 * size**3 * repeat / (time.perf_counter() - start) / 1e9)
    return best


def encoded_examples(base: Path, data: Path) -> list[Any]:
    """The examples exactly as ftreg encodes them for training (same tokens, same labels)."""
    from ftreg.datasets.encoding import encode
    from ftreg.datasets.loading import load_dataset
    from ftreg.datasets.tokenizer import load_encoder

    dataset = load_dataset(str(data), None, {})
    examples, _ = encode(dataset.examples, load_encoder(base), MAX_LENGTH)
    return examples


def build_model(strategy: str, base: Path) -> Any:
    """The model as ftreg's strategy sets it up, written as a user would."""
    from transformers import AutoModelForCausalLM

    if strategy != "lora8bit":
        return AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    model = AutoModelForCausalLM.from_pretrained(base, quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map={"": "cpu"})
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.dtype != torch.int8:
            tensor.data = tensor.data.clone()
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    torch.manual_seed(SEED)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True, task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def padding_collator(pad_id: int, to_max_length: bool) -> Any:
    def collate(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = MAX_LENGTH if to_max_length else max(len(row["input_ids"]) for row in rows)
        pad = [width - len(row["input_ids"]) for row in rows]
        return {
            "input_ids": torch.tensor([row["input_ids"] + [pad_id] * n for row, n in zip(rows, pad)]),
            "labels": torch.tensor([row["labels"] + [-100] * n for row, n in zip(rows, pad)]),
            "attention_mask": torch.tensor([[1] * len(row["input_ids"]) + [0] * n for row, n in zip(rows, pad)]),
        }

    return collate


def as_dataset(examples: list[Any]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict({"input_ids": [e.input_ids for e in examples], "labels": [e.labels for e in examples]})


def trainer_run(model: Any, examples: list[Any], held_out: list[Any], careful: bool, bf16: bool = False) -> tuple[float, float]:
    """Seconds the `Trainer` took (its own train_runtime), and the eval loss on ``held_out`` after it."""
    from transformers import Trainer, TrainingArguments

    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(
            output_dir=scratch, per_device_train_batch_size=BATCH, per_device_eval_batch_size=BATCH, gradient_accumulation_steps=ACCUM, learning_rate=LR,
            num_train_epochs=1, lr_scheduler_type="linear", seed=SEED, logging_steps=1000, save_strategy="no", report_to="none",
            disable_tqdm=True, dataloader_pin_memory=False, remove_unused_columns=False,
            train_sampling_strategy="group_by_length" if careful else "random", bf16=bf16, use_cpu=not torch.cuda.is_available(),
        )
        collate = padding_collator(model.config.eos_token_id, to_max_length=not careful)
        trainer = Trainer(model=model, args=args, train_dataset=as_dataset(examples), eval_dataset=as_dataset(held_out), data_collator=collate)
        result = trainer.train()
        # The mean over batches of 2 of each batch's token-mean loss: what ftreg's packed batches of 2 report too.
        return float(result.metrics["train_runtime"]), float(trainer.evaluate()["eval_loss"])


def bare_loop(model: Any, examples: list[Any], precision: str) -> float:
    """Seconds of a plain loop over ftreg's batches in ftreg's order (each step's examples packed and cut
    into micro-batches by tokens, given to the model as ftreg gives them), in the precision ftreg chose,
    with the fused AdamW ftreg updates with: no Trainer, no callbacks."""
    from transformers import get_linear_schedule_with_warmup

    from ftreg.engines.batching import model_inputs, packed_training, packing_collator, split_packed, step_budget

    collate = packing_collator()
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(SEED)).tolist()
    steps = [[{"input_ids": examples[i].input_ids, "labels": examples[i].labels} for i in order[start:start + BATCH * ACCUM]]
             for start in range(0, len(order), BATCH * ACCUM)]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=0.0, fused=True)
    schedule = get_linear_schedule_with_warmup(optimizer, 0, len(steps))
    model.train()
    model.config.use_cache = False
    start = time.perf_counter()
    with packed_training(model):
        for rows in steps:
            packed = collate(rows)
            targets = (packed["labels"] != -100).sum()
            for part in split_packed(packed, step_budget(BATCH, MAX_LENGTH)):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    loss = model(**model_inputs(part), num_items_in_batch=targets).loss
                loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def ftreg_run(strategy: str, base: Path, data: Path, held_out: Path) -> tuple[float, float]:
    """Seconds of training as ftreg records them (train_runtime_s), through the public API in this
    process (warm, like the other contenders), and its eval loss on ``held_out``."""
    import ftreg
    from ftreg.registry import Registry

    with tempfile.TemporaryDirectory() as home:
        spec = ftreg.settings({"strategy": strategy, "base": str(base), "dataset": str(data), "name": "bench", "eval_dataset": str(held_out),
                               "eval_steps": 100000, "batch_size": BATCH, "grad_accum": ACCUM, "learning_rate": LR, "epochs": 1.0, "max_length": MAX_LENGTH,
                               "logging_steps": 1000})
        entry = ftreg.train(spec, registry=Registry(home), show_progress=False)
        assert entry is not None
        return float(entry.metrics["train_runtime_s"]), float(entry.metrics["eval_loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--eval", type=Path, required=True, help="held-out examples: every contender but the bare loop reports its eval loss on them")
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--contenders", default="padded,careful,bare,ftreg")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=0, help="further rounds of the bare loop and ftreg alone")
    parser.add_argument("--precision", default="fp32", help="what ftreg chose for this strategy on this machine: the bare loop computes in it too")
    args = parser.parse_args()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    print(json.dumps({"matmul_gflops": {"fp32": matmul_peak_gflops(torch.float32), "bf16": matmul_peak_gflops(torch.bfloat16)}}), flush=True)
    examples = encoded_examples(args.base, args.data)
    held_out = encoded_examples(args.base, args.eval)
    useful = sum(len(e.input_ids) for e in examples)
    contenders = args.contenders.split(",")
    line_ups = [contenders] * args.rounds + [[c for c in contenders if c in ("bare", "ftreg")]] * args.pairs
    for round_, line_up in enumerate(line_ups):
        # Every other round in reverse: no contender always runs in the wake of the same other one.
        for contender in line_up if round_ % 2 == 0 else line_up[::-1]:
            eval_loss = None
            if contender in ("ftreg", "scratch"):  # scratch: ftreg's own loop, a full fine-tune like full-fp16
                seconds, eval_loss = ftreg_run(args.strategy if contender == "ftreg" else "scratch", args.base, args.data, args.eval)
            elif contender == "bare":
                seconds = bare_loop(build_model(args.strategy, args.base), examples, args.precision)
            else:
                seconds, eval_loss = trainer_run(build_model(args.strategy, args.base), examples, held_out, careful=contender != "padded", bf16=contender == "careful-bf16")
            gc.collect()
            print(json.dumps({"contender": contender, "round": round_, "seconds": seconds, "useful_tokens": useful, "eval_loss": eval_loss}), flush=True)


if __name__ == "__main__":
    main()
