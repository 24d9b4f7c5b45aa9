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


def write_model_card(directory: Path, record: dict[str, Any], repo_id: str | None = None) -> None:
    """Write README.md for the version described by ``record`` (manifest fields) into ``directory``.

    ``repo_id`` is where the card is being pushed; the usage snippet then loads from there, and
    from the base's Hub repository and revision (``record["base_source"]``), so it runs anywhere.
    """
    import yaml

    kind, strategy, dataset, metrics = record["kind"], record.get("strategy") or "", record.get("dataset") or {}, record.get("metrics") or {}
    base_source = record.get("base_source") or {}
    base_repo = base_source.get("repo_id") if base_source.get("type") == "hub" else None
    metadata: dict[str, Any] = {
        "library_name": "peft" if kind == "adapter" else "transformers",
        "pipeline_tag": "text-generation",
        "tags": sorted({"ftreg", strategy, "gpt2", *(["lora"] if kind == "adapter" else [])} - {""}),
        "metrics": sorted(key for key in metrics if key.endswith("loss")),
    }
    if base_repo:
        metadata["base_model"] = base_repo  # a Hub id, as the Hub's metadata requires
    if dataset.get("fingerprint"):
        metadata["datasets"] = [dataset["fingerprint"]]
    rows = "\n".join(f"| `{key}` | `{json.dumps(value)}` |" for key, value in sorted(flat_settings(record.get("config") or {}).items()))
    results = "\n".join(f"| {key} | {value:.4g} |" for key, value in sorted(metrics.items()) if isinstance(value, (int, float)))
    curve = "\n## Loss curve\n\n![loss curve](loss.png)\n" if (directory / "loss.png").is_file() else ""
    template = (record.get("prompt_template") or "{prompt}").replace("{prompt}", "<your prompt>")
    has_tokenizer = (directory / "tokenizer_config.json").is_file()
    text = f"""---
{yaml.safe_dump(metadata, sort_keys=True).strip()}
---

# {record["name"]}

A GPT-2 {"LoRA adapter" if kind == "adapter" else "checkpoint"} trained with [ftreg](https://pypi.org/project/ftreg/)'s `{strategy}` strategy on `{base_repo or record.get("base")}`.

- Data: `{dataset.get("source")}` ({dataset.get("format")} format, {dataset.get("examples")} examples, {dataset.get("fingerprint")})
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

{_usage(kind, record, base_source, repo_id, has_tokenizer)}
"""
    (directory / CARD).write_text(text, encoding="utf-8")


def _usage(kind: str, record: dict[str, Any], base_source: dict[str, Any], repo_id: str | None, has_tokenizer: bool) -> str:
    here = repo_id or "PATH_OR_REPO_OF_THIS_MODEL"
    with_ftreg = f"With ftreg: `ftreg generate --adapter {record['name']} \"How do I return an item?\"`"
    if kind != "adapter":
        code = f"""from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("{here}")
tokenizer = AutoTokenizer.from_pretrained("{here}")"""
        return f"```python\n{code}\n```\n\n{with_ftreg}"
    if base_source.get("type") == "path":
        return f"The base, `{record.get('base')}`, is a local directory; `ftreg push {record['name']} --repo OWNER/NAME --merge` shares a standalone model.\n\n{with_ftreg}"
    if base_source.get("type") != "hub":
        return (
            f"The base, `{record.get('base')}`, is in the ftreg registry this adapter was trained in; "
            f"`ftreg push {record['name']} --repo OWNER/NAME --base-repo OWNER/BASE` publishes both so that plain "
            f"`transformers` and `peft` can load them anywhere.\n\n{with_ftreg}"
        )
    revision = f', revision="{base_source["revision"]}"' if base_source.get("revision") else ""
    tokenizer_from = f'"{here}"' if has_tokenizer else f'"{base_source["repo_id"]}"{revision}'
    code = f"""from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

base = AutoModelForCausalLM.from_pretrained("{base_source["repo_id"]}"{revision})
model = PeftModel.from_pretrained(base, "{here}")
tokenizer = AutoTokenizer.from_pretrained({tokenizer_from})"""
    return f"```python\n{code}\n```\n\n{with_ftreg}"
