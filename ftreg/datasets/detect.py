"""Detecting a file's dataset format when no --format is given."""

from __future__ import annotations

from pathlib import Path

from ftreg.contract.formats import DatasetFormat, looks_like_json, read_json_records, read_text
from ftreg.errors import DatasetError

SAMPLE_CHARS = 65536


def detect_format(path: Path, formats: dict[str, DatasetFormat]) -> DatasetFormat:
    """The one format that scores highest on the file's first characters; an error if none or a tie."""
    sample = read_text(path)[:SAMPLE_CHARS]
    scores = sorted(((fmt.score(path, sample), name) for name, fmt in formats.items()), reverse=True)
    best = [name for score, name in scores if score > 0 and score == scores[0][0]]
    if len(best) == 1:
        return formats[best[0]]
    if not best and looks_like_json(sample):
        # Say what is wrong with the JSON itself (line and column) before blaming its shape.
        if not read_json_records(path):
            raise DatasetError(f"{path}: the dataset has no examples")
    listing = ", ".join(f"{name} ({score:g})" for score, name in scores)
    problem = f"matches {' and '.join(best)} equally" if best else "matches no known format"
    raise DatasetError(f"{path}: the file {problem}; pass `format` (scores: {listing})")
