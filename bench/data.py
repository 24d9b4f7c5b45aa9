"""Data: `ftreg data check` on 10k, 100k and 1M rows of JSONL, time and peak memory, next to a careful `datasets` script.

The baseline is what a careful user writes with `datasets`: `Dataset.from_json` (memory-mapped
Arrow) and a batched `map` of the same tokenizer to get token lengths. Each command runs in its
own process; peak memory is that process's maximum resident set size.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.suite import Context, Plot, Section, Table, Target, peak_of

TITLE = "Data check"
TARGET_MIB = 1024  # issue 13: data check of 1M rows in under 1 GiB
BASELINE = """
import sys, datasets, transformers
datasets.disable_progress_bars()
tokenizer = transformers.AutoTokenizer.from_pretrained(sys.argv[2])
data = datasets.Dataset.from_json(sys.argv[1], cache_dir=sys.argv[3])
def lengths(batch):
    prompts = tokenizer(batch["instruction"], add_special_tokens=False)["input_ids"]
    answers = tokenizer(batch["response"], add_special_tokens=False)["input_ids"]
    return {"length": [len(p) + len(a) + 1 for p, a in zip(prompts, answers)]}
print(max(data.map(lengths, batched=True, remove_columns=data.column_names)["length"]))
"""


def write_rows(path: Path, rows: int) -> None:
    """The bundled support pairs, repeated with a row number so no two rows are duplicates."""
    from ftreg.datasets.loading import dataset_path

    pairs = json.loads(dataset_path("builtin:support").read_text())
    with path.open("w") as out:
        for row in range(rows):
            pair = pairs[row % len(pairs)]
            out.write(json.dumps({"instruction": f"{pair['instruction']} (#{row})", "response": pair["response"]}) + "\n")


def run(context: Context) -> Section:
    sizes = (1_000, 10_000) if context.quick else (10_000, 100_000, 1_000_000)
    env = context.env(context.home("data"))
    base = context.embedded_base()
    results: dict[str, dict[int, tuple[float, float]]] = {"ftreg data check": {}, "datasets from_json + map": {}}
    for rows in sizes:
        data = context.scratch / f"rows-{rows}.jsonl"
        write_rows(data, rows)
        commands = {
            "ftreg data check": [context.ftreg, "data", "check", str(data)],
            "datasets from_json + map": [context.python, "-c", BASELINE, str(data), str(base), str(context.scratch / f"datasets-cache-{rows}")],
        }
        for label, command in commands.items():
            results[label][rows] = peak_of(command, env)
        data.unlink()
    largest = sizes[-1]
    ours, theirs = results["ftreg data check"][largest], results["datasets from_json + map"][largest]
    rows_table = [[f"{rows:,}", label, f"{seconds:.1f}", f"{peak:.0f}"] for rows in sizes for label, by_size in results.items() for seconds, peak in [by_size[rows]]]
    return Section(
        key="data", title=TITLE,
        about=("Rows are the bundled support pairs, repeated with a row number (no duplicates), as JSONL; one run of each command per size, each in its own "
               "process (wall time includes start-up; peak is the process's maximum resident set size)."),
        tables=[Table(["rows", "command", "wall s", "peak MiB"], rows_table)],
        targets=[Target(claim=f"`ftreg data check` of {largest:,} rows in under 1 GiB", issue=13, measured=f"{ours[1]:.0f} MiB in {ours[0]:.1f} s",
                        baseline=f"datasets from_json + map: {theirs[1]:.0f} MiB in {theirs[0]:.1f} s", ratio=f"{ours[1] / theirs[1]:.2f}x the memory",
                        met=ours[1] < TARGET_MIB)],
        plots=[
            Plot(name="data-check-memory", title="Peak memory vs rows", x_label="rows", y_label="peak MiB",
                 series={label: [(rows, by_size[rows][1]) for rows in sizes] for label, by_size in results.items()}, log_x=True),
            Plot(name="data-check-time", title="Wall time vs rows", x_label="rows", y_label="seconds",
                 series={label: [(rows, by_size[rows][0]) for rows in sizes] for label, by_size in results.items()}, log_x=True),
        ],
    )
