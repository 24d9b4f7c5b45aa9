"""The baseline for bench/train_throughput.py: GPT-2 fine-tuning as the typical tutorial does it.

HF `Trainer`, every example padded to `max_length`, `DataCollatorForLanguageModeling`. Same base,
same 8-bit LoRA set-up and hyperparameters as `ftreg train --strategy lora8bit`, so the only
difference measured is how batches are built. Prints one JSON line of measurements.
"""

import argparse
import json
import logging
import tempfile

from datasets import Dataset
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
)

parser = argparse.ArgumentParser()
parser.add_argument("--base", required=True)
parser.add_argument("--data", required=True)
parser.add_argument("--max-length", type=int, default=256)
args = parser.parse_args()
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

tokenizer = AutoTokenizer.from_pretrained(args.base)
tokenizer.pad_token = tokenizer.eos_token
pairs = json.load(open(args.data))
texts = [f"### Instruction:\n{p['instruction']}\n\n### Response:\n{p['response']}{tokenizer.eos_token}" for p in pairs]
dataset = Dataset.from_dict({"text": texts}).map(
    lambda batch: tokenizer(batch["text"], padding="max_length", truncation=True, max_length=args.max_length),
    batched=True,
    remove_columns=["text"],
)

model = AutoModelForCausalLM.from_pretrained(args.base, quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map={"": "cpu"})
model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True, task_type="CAUSAL_LM"))

with tempfile.TemporaryDirectory() as scratch:
    training_args = TrainingArguments(
        output_dir=scratch, per_device_train_batch_size=2, gradient_accumulation_steps=4, learning_rate=2e-4,
        num_train_epochs=1, lr_scheduler_type="linear", seed=42, logging_steps=50, save_strategy="no",
        report_to="none", disable_tqdm=True, dataloader_pin_memory=False,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset, data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False))
    result = trainer.train()

useful = sum(sum(mask) for mask in dataset["attention_mask"])
runtime = result.metrics["train_runtime"]
print(json.dumps({"runtime_s": runtime, "useful_tokens": useful, "computed_tokens": len(dataset) * args.max_length, "useful_tokens_per_s": useful / runtime}))
