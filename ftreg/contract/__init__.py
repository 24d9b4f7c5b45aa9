"""The plugin contract: everything a plugin author implements or receives, and nothing else.

These modules import nothing from ftreg but ``ftreg.errors`` and each other, so a plugin (and
``ftreg.hookspecs``) can import them at no cost and without reaching into ftreg's machinery.
"""

from ftreg.contract.formats import (
    DatasetFormat,
    Example,
    Problems,
    Segment,
    check_string_fields,
    first_json_record,
    looks_like_json,
    read_json_records,
    read_text,
)
from ftreg.contract.manifest import KINDS, Entry, Kind, Manifest
from ftreg.contract.names import Ref, parse_ref, validate_name
from ftreg.contract.sources import DatasetSource
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
    "DatasetFormat",
    "DatasetSource",
    "EncodedExample",
    "Entry",
    "Example",
    "Kind",
    "Manifest",
    "Problems",
    "Ref",
    "ResolvedBase",
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
    "validate_name",
]
