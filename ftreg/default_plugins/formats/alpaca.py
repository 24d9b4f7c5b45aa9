"""Alpaca: records of {"instruction", "input" (optional, may be empty), "output"}.

Rendered with the standard Alpaca prompts (the input section only when the input is non-empty);
loss on the output only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftreg.contract.formats import RecordFormat, RecordProblem, Segment, string_fields
from ftreg.errors import ConfigError
from ftreg.hookspecs import hookimpl

WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
WITHOUT_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{prompt}\n\n### Response:\n"
)


class AlpacaFormat(RecordFormat):
    name = "alpaca"
    description = 'records of {"instruction", "input", "output"} with the Alpaca prompt'
    renamable_fields = ("instruction", "input", "output")
    required_fields = ("instruction", "output")
    prompt_template = WITHOUT_INPUT
    generation_extras = ("input",)

    def score_record(self, record: Mapping[str, Any]) -> float:
        if "output" not in record:
            return 0.0
        return 1.0 if "instruction" in record else 0.5

    def segments(self, record: Mapping[str, Any]) -> tuple[Segment, ...]:
        row = string_fields(record, self.required_fields)
        extra = record.get("input") or ""  # Parquet and Arrow give a missing input as None
        if not isinstance(extra, str):
            raise RecordProblem(f"'input' must be a string, got {type(extra).__name__}")
        if extra.strip():
            prompt = WITH_INPUT.replace("{instruction}", row["instruction"]).replace("{input}", extra.strip())
        else:
            prompt = self.render_prompt(row["instruction"])
        return Segment(prompt, False), Segment(row["output"], True, eos=True)

    def generation_prompt(
        self, prompt: str | None = None, *, system: str | None = None, input: str | None = None, messages: list[dict[str, str]] | None = None
    ) -> tuple[Segment, ...]:
        """The prompt `segments` renders for this instruction and input (the input section only when the input is not blank)."""
        if prompt is None or not prompt.strip():
            raise ConfigError("the prompt (the Alpaca instruction) is empty")
        return self.segments({"instruction": prompt, "input": input or "", "output": "-"})[:1]


@hookimpl
def register_dataset_formats(register):
    register(AlpacaFormat())
