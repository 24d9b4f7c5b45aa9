"""Instruction/response pairs: a JSON array or JSON Lines of {"instruction": ..., "response": ...}.

Rendered with this template; only the response (and the end-of-text token after it) carries loss::

    ### Instruction:
    {instruction}

    ### Response:
    {response}
"""

from __future__ import annotations

from pathlib import Path

from ftreg.contract.formats import DatasetFormat, Example, Problems, Segment, check_string_fields, first_json_record, read_json_records
from ftreg.hookspecs import hookimpl


class InstructionFormat(DatasetFormat):
    name = "instruction"
    description = 'JSON array or JSONL of {"instruction", "response"}; loss on the response only'
    renamable_fields = ("instruction", "response")
    prompt_template = "### Instruction:\n{prompt}\n\n### Response:\n"
    fields = ("instruction", "response")

    def score(self, path: Path, sample: str) -> float:
        record = first_json_record(sample)
        if not isinstance(record, dict):
            return 0.0
        if set(self.fields) <= set(record):
            return 1.0
        # An instruction without Alpaca's "output" is most likely this format with a key missing.
        return 0.5 if "instruction" in record and "output" not in record else 0.0

    def read(self, path: Path, columns: dict[str, str] | None = None) -> list[Example]:
        problems = Problems(path)
        examples = []
        for line, record in read_json_records(path):
            row = check_string_fields(record, self.fields, problems, line, columns)
            if row is not None:
                segments = (Segment(self.render_prompt(row["instruction"]), False), Segment(row["response"], True, eos=True))
                examples.append(Example(segments, line))
        problems.raise_if_any()
        return examples


@hookimpl
def register_dataset_formats(register):
    register(InstructionFormat())
