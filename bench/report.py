"""BENCHMARKS.md and its plots, rendered from a results file alone (so a report can be re-made without re-measuring)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.suite import Plot, Section, Target


def render(results: dict[str, Any], markdown: Path, plots: Path, results_file: Path) -> None:
    """Write ``markdown`` and one PNG per plot into ``plots``."""
    sections = [Section.from_json(data) for data in results["sections"]]
    plots.mkdir(parents=True, exist_ok=True)
    for section in sections:
        for plot in section.plots:
            draw(plot, plots / f"{plot.name}.png")
    machine = results["machine"]
    relative = markdown.parent
    lines = [
        "# Benchmarks",
        "",
        f"Measured with `{results['command']}` on {results['date']}, in {results['seconds'] / 60:.1f} minutes, "
        f"from [`{results_file.relative_to(relative)}`]({results_file.relative_to(relative)}).",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores ({machine['torch_threads']} torch threads), {machine['memory_gib']} GiB, "
        f"{machine['arch']}; CUDA: {machine['cuda'] or 'none'}; Python {machine['python']}, torch {machine['torch']}, "
        f"transformers {machine['transformers']}, ftreg {machine['ftreg']}.",
        "",
        "Every benchmark runs ftreg and its baseline in the same run, alternating them; a value is the median of its repetitions, "
        "with the minimum and maximum in brackets.",
        "",
        "## Targets",
        "",
        *targets_table([target for section in sections for target in section.targets]),
    ]
    for section in sections:
        lines += ["", f"## {section.title}", "", section.about.strip(), ""]
        for table in section.tables:
            if table.caption:
                lines += [table.caption, ""]
            lines += [*markdown_table(table.columns, table.rows), ""]
        for plot in section.plots:
            lines += [f"![{plot.title}]({(plots / f'{plot.name}.png').relative_to(relative)})", ""]
        lines += [f"*This benchmark took {section.seconds:.0f} s.*"]
    markdown.write_text("\n".join(lines) + "\n")


def targets_table(targets: list[Target]) -> list[str]:
    rows = [[t.claim, f"#{t.issue}", t.measured, t.baseline, t.ratio, "yes" if t.met else "**no**"] for t in targets]
    return markdown_table(["target", "issue", "measured", "baseline", "ratio", "met"], rows)


def markdown_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    escape = lambda cell: str(cell).replace("|", "\\|")  # noqa: E731
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
        *("| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows),
    ]


def draw(plot: Plot, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for label, points in plot.series.items():
        xs, ys = zip(*points)
        axes.plot(xs, ys, marker="o", label=label)
    if plot.log_x:
        axes.set_xscale("log")
    if plot.log_y:
        axes.set_yscale("log")
    axes.set_xlabel(plot.x_label)
    axes.set_ylabel(plot.y_label)
    axes.set_title(plot.title)
    axes.set_ylim(bottom=0 if not plot.log_y else None)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
