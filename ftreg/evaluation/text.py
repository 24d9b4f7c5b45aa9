"""A comparison as plain text for the terminal: the metrics table with the best marked, then the answers."""

from __future__ import annotations

import textwrap

from ftreg.evaluation.comparison import Comparison, MetricRow

WIDTH = 100


def render_text(comparison: Comparison) -> str:
    settings = ", ".join(f"{key} {value}" for key, value in comparison.settings.items() if value is not None)
    lines = [f"{' vs '.join(comparison.models)} on {comparison.dataset} ({comparison.fingerprint[:23]}){f'; {settings}' if settings else ''}", ""]
    headers = ["", *comparison.models]
    rows = [[f"{row.name} {_arrow(row)}".rstrip(), *(_cell(row, index) for index in range(len(comparison.models)))] for row in comparison.rows]
    widths = [max(len(line[column]) for line in [headers, *rows]) for column in range(len(headers))]
    for line in [headers, *rows]:
        lines.append("  ".join(cell.ljust(width) if column == 0 else cell.rjust(width) for column, (cell, width) in enumerate(zip(line, widths))).rstrip())
    lines.append("* the best in its row; ↑ higher is better, ↓ lower is better")
    for number, sample in enumerate(comparison.samples, start=1):
        lines += ["", f"[{number}] prompt:", *_wrapped(sample.prompt), "reference:", *_wrapped(sample.reference)]
        for model, answer in zip(comparison.models, sample.answers):
            lines += [f"{model}:", *_wrapped(answer or "(empty)")]
    return "\n".join(lines)


def _arrow(row: MetricRow) -> str:
    return "" if row.higher_is_better is None else "↑" if row.higher_is_better else "↓"


def _cell(row: MetricRow, index: int) -> str:
    value = row.values[index]
    if value is None:
        return "-"
    return f"{value:.4g}{'*' if index in row.best else ' '}"


def _wrapped(text: str) -> list[str]:
    """Every line of ``text``, indented and wrapped, none cut."""
    return [wrapped for line in text.strip().splitlines() or [""] for wrapped in textwrap.wrap(line, WIDTH, initial_indent="  ", subsequent_indent="  ") or ["  "]]
