"""Model cards: the README.md of every version, with Hugging Face YAML metadata.

The card is written into the artifact before it is published, so it is hashed with the rest
and pushed to the Hub as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftreg.registry.lineage import flat_settings

CARD = "README.md"


def write_model_card(
    directory: Path,
    *,
    name: str,
    kind: str,
    base: str,
    base_source: dict[str, Any],
    strategy: str,
    dataset: dict[str, Any],
    config: dict[str, Any],
    metrics: dict[str, float],
    prompt_template: str,
) -> None:
    import yaml

    base_model = base_source.get("repo_id", base)  # a Hub id where there is one, else the registry ref
    metadata = {
        "base_model": base_model,
        "library_name": "peft" if kind == "adapter" else "transformers",
        "pipeline_tag": "text-generation",
        "tags": sorted({"ftreg", strategy, "gpt2", *(["lora"] if kind == "adapter" else [])}),
        "datasets": [dataset["fingerprint"]],
        "metrics": sorted(key for key in metrics if key.endswith("loss")),
    }
    rows = "\n".join(f"| `{key}` | `{json.dumps(value)}` |" for key, value in sorted(flat_settings(config).items()))
    results = "\n".join(f"| {key} | {value:.4g} |" for key, value in sorted(metrics.items()) if isinstance(value, (int, float)))
    curve = "\n## Loss curve\n\n![loss curve](loss.png)\n" if (directory / "loss.png").is_file() else ""
    usage = _usage(kind, base_model, name)
    template = prompt_template.replace("{prompt}", "<your prompt>")
    text = f"""---
{yaml.safe_dump(metadata, sort_keys=True).strip()}
---

# {name}

A GPT-2 {"LoRA adapter" if kind == "adapter" else "checkpoint"} trained with [ftreg](https://pypi.org/project/ftreg/)'s `{strategy}` strategy on `{base}`.

- Data: `{dataset["source"]}` ({dataset["format"]} format, {dataset["examples"]} examples, {dataset["fingerprint"]})
- Prompt template (generation wraps prompts the same way):

```
{template}
```

## Results

| metric | value |
| --- | --- |
{results}
{curve}
## Training settings

| setting | value |
| --- | --- |
{rows}

## Usage

{usage}
"""
    (directory / CARD).write_text(text, encoding="utf-8")


def _usage(kind: str, base_model: str, name: str) -> str:
    if kind == "adapter":
        code = f"""from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

base = AutoModelForCausalLM.from_pretrained("{base_model}")
model = PeftModel.from_pretrained(base, "PATH_OR_REPO_OF_THIS_ADAPTER")
tokenizer = AutoTokenizer.from_pretrained("{base_model}")"""
    else:
        code = """from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("PATH_OR_REPO_OF_THIS_MODEL")
tokenizer = AutoTokenizer.from_pretrained("PATH_OR_REPO_OF_THIS_MODEL")"""
    return f"```python\n{code}\n```\n\nWith ftreg: `ftreg generate --adapter {name} \"How do I return an item?\"`"
