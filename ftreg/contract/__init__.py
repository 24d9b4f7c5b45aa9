"""The plugin contract: everything a plugin author implements or receives, and nothing else.

These modules import nothing from ftreg but ``ftreg.errors`` and each other, so a plugin (and
``ftreg.hookspecs``) can import them at no cost and without reaching into ftreg's machinery.
"""

from ftreg.contract.formats import (
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
from ftreg.contract.manifest import KINDS, Entry, Kind, Manifest
from ftreg.contract.metrics import MODEL_METRICS, Metric
from ftreg.contract.names import Ref, parse_ref, validate_name
from ftreg.contract.sources import DatasetSource, ResolvedData
from ftreg.contract.training import (
    IGNORE_INDEX,
    EncodedExample,
    ResolvedBase,
    StrategyOptions,
    TrainingStrategy,
    TrainJob,
    TrainSpec,
    option,
)

__all__ = [
    "IGNORE_INDEX",
    "KINDS",
    "MODEL_METRICS",
    "DatasetFormat",
    "DatasetSource",
    "EncodedExample",
    "Entry",
    "Example",
    "Kind",
    "Manifest",
    "Metric",
    "Problems",
    "RecordFormat",
    "RecordProblem",
    "Ref",
    "ResolvedBase",
    "ResolvedData",
    "Segment",
    "StrategyOptions",
    "TrainJob",
    "TrainSpec",
    "TrainingStrategy",
    "check_string_fields",
    "first_json_record",
    "looks_like_json",
    "option",
    "parse_ref",
    "read_json_records",
    "read_text",
    "string_fields",
    "validate_name",
]
