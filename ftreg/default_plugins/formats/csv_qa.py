"""Question/answer pairs: records of {"question", "answer"}, most often a CSV or TSV with a header row.

Other column names: ``--column question=Q --column answer=A``. Loss on the answer only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftreg.contract.formats import RecordFormat, Segment, string_fields
from ftreg.hookspecs import hookimpl


class CsvQaFormat(RecordFormat):
    name = "csv-qa"
    description = "question and answer columns (CSV, TSV or any table); loss on the answer"
    renamable_fields = ("question", "answer")
    required_fields = ("question", "answer")
    prompt_template = "### Question:\n{prompt}\n\n### Answer:\n"

    def score_record(self, record: Mapping[str, Any]) -> float:
        return 1.0 if set(self.required_fields) <= set(record) else 0.0

    def segments(self, record: Mapping[str, Any]) -> tuple[Segment, ...]:
        row = string_fields(record, self.required_fields)
        return Segment(self.render_prompt(row["question"]), False), Segment(row["answer"], True, eos=True)


@hookimpl
def register_dataset_formats(register):
    register(CsvQaFormat())
