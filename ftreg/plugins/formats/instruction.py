"""Instruction/response pairs: a JSON array or JSON Lines of {"instruction": ..., "response": ...}.

Rendered with this template; only the response (and the end-of-text token after it) carries loss::

    ### Instruction:
    {instruction}

    ### Response:
    {response}
"""

from __future__ import annotations

from pathlib import Path

from ftreg.formats import DatasetFormat, Example, Problems, Segment, check_string_fields, read_json_records
from ftreg.hookspecs import hookimpl


class InstructionFormat(DatasetFormat):
    name = "instruction"
    description = 'JSON array or JSONL of {"instruction", "response"}; loss on the response only'
    prompt_template = "### Instruction:\n{prompt}\n\n### Response:\n"

    def read(self, path: Path) -> list[Example]:
        problems = Problems(path)
        examples = []
        for line, record in read_json_records(path):
            row = check_string_fields(record, ("instruction", "response"), problems, line)
            if row is not None:
                prompt = self.render_prompt(row["instruction"].strip())
                examples.append(Example((Segment(prompt, False), Segment(row["response"].strip(), True)), line))
        problems.raise_if_any()
        return examples


@hookimpl
def register_dataset_formats(register):
    register(InstructionFormat())
