"""The documented home of the dataset-format contract (``from ftreg.formats import DatasetFormat``).

The definitions live in `ftreg.contract.formats`; this module keeps plugins written against the
first release's documented imports working unchanged.
"""

from ftreg.contract.formats import (
    MAX_PROBLEMS,
    DatasetFormat,
    Example,
    Problems,
    RecordFormat,
    RecordProblem,
    Segment,
    check_string_fields,
    first_json_record,
    looks_like_json,
    read_json_records,
    read_text,
    string_fields,
)

__all__ = [
    "MAX_PROBLEMS",
    "DatasetFormat",
    "Example",
    "Problems",
    "RecordFormat",
    "RecordProblem",
    "Segment",
    "check_string_fields",
    "first_json_record",
    "looks_like_json",
    "read_json_records",
    "read_text",
    "string_fields",
]
