"""Alpaca: a JSON array or JSONL of {"instruction", "input" (optional, may be empty), "output"}.

Rendered with the standard Alpaca prompts (the input section only when the input is non-empty);
loss on the output only.
"""

from __future__ import annotations

from pathlib import Path

from ftreg.contract.formats import (
    DatasetFormat,
    Example,
    Problems,
    Segment,
    check_string_fields,
    first_json_record,
    read_json_records,
)
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


class AlpacaFormat(DatasetFormat):
    name = "alpaca"
    description = 'JSON array or JSONL of {"instruction", "input", "output"} with the Alpaca prompt'
    renamable_fields = ("instruction", "input", "output")
    fields = ("instruction", "output")
    prompt_template = WITHOUT_INPUT
    generation_extras = ("input",)

    def score(self, path: Path, sample: str) -> float:
        record = first_json_record(sample)
        if not isinstance(record, dict) or "output" not in record:
            return 0.0
        return 1.0 if "instruction" in record else 0.5

    def read(self, path: Path, columns: dict[str, str] | None = None) -> list[Example]:
        problems = Problems(path)
        examples = []
        input_key = (columns or {}).get("input", "input")
        for line, record in read_json_records(path):
            row = check_string_fields(record, self.fields, problems, line, columns)
            if row is None:
                continue
            assert isinstance(record, dict)  # check_string_fields returns None for anything else
            extra = record.get(input_key, "")
            if not isinstance(extra, str):
                problems.add(f"{input_key!r} must be a string, got {type(extra).__name__}", line)
                continue
            if extra.strip():
                prompt = WITH_INPUT.replace("{instruction}", row["instruction"]).replace("{input}", extra.strip())
            else:
                prompt = self.render_prompt(row["instruction"])
            examples.append(Example((Segment(prompt, False), Segment(row["output"], True, eos=True)), line))
        problems.raise_if_any()
        return examples

    def generation_prompt(
        self, prompt: str | None = None, *, system: str | None = None, input: str | None = None, messages: list[dict[str, str]] | None = None
    ) -> tuple[Segment, ...]:
        """The prompt `read` renders for this instruction and input (the input section only when the input is not blank)."""
        if prompt is None or not prompt.strip():
            raise ConfigError("the prompt (the Alpaca instruction) is empty")
        if input is None or not input.strip():
            return (Segment(self.render_prompt(prompt.strip()), False),)
        return (Segment(WITH_INPUT.replace("{instruction}", prompt.strip()).replace("{input}", input.strip()), False),)


@hookimpl
def register_dataset_formats(register):
    register(AlpacaFormat())
