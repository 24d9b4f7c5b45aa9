"""ftreg plugin: Markdown FAQ files as a dataset format, a per-step CSV loss log, and `ftreg faq-stats`."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import click

from ftreg import hookimpl
from ftreg.contract import DatasetFormat, Example, Segment, TrainJob
from ftreg.errors import DatasetError

FTREG_PLUGIN_API = 1  # the hook interface this plugin is written for
LOSS_LOG = "loss_log.csv"
_QUESTION = re.compile(r"^##\s+(?P<question>.+?)\s*$")


class FaqFormat(DatasetFormat):
    name = "faq"
    description = "Markdown FAQ: each `## question` heading followed by its answer paragraphs"
    prompt_template = "Q: {prompt}\nA: "

    def score(self, path: Path, sample: str) -> float:
        headings = sum(1 for line in sample.splitlines() if _QUESTION.match(line))
        return 0.9 if path.suffix.lower() in (".md", ".markdown") and headings else 0.0

    def read(self, path: Path, columns: dict[str, str] | None = None) -> list[Example]:
        return [Example((Segment(self.render_prompt(question), False), Segment(answer, True, eos=True)), line) for line, question, answer in faq_pairs(path)]


def faq_pairs(path: Path) -> list[tuple[int, str, str]]:
    """(line, question, answer) for each heading of the file; an empty answer is an error naming its line."""
    pairs: list[tuple[int, str, list[str]]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if found := _QUESTION.match(line):
            pairs.append((number, found["question"], []))
        elif pairs:
            pairs[-1][2].append(line)
    if not pairs:
        raise DatasetError(f"{path}: no `## question` heading found")
    result = []
    for number, question, lines in pairs:
        answer = "\n".join(lines).strip()
        if not answer:
            raise DatasetError(f"{path}:{number}: the question {question!r} has no answer below it")
        result.append((number, question, answer))
    return result


@hookimpl
def register_dataset_formats(register):
    register(FaqFormat())


@hookimpl
def on_train_log(job: TrainJob, step: int, metrics: dict[str, float]) -> None:
    """Append the step's numbers to loss_log.csv in the run's directory (beside its checkpoints)."""
    if job.checkpoint_dir is None:
        return
    log = job.checkpoint_dir.parent / LOSS_LOG
    new = not log.exists()
    with log.open("a", newline="") as file:
        writer = csv.writer(file)
        if new:
            writer.writerow(["step", "name", "value"])
        writer.writerows([step, name, value] for name, value in sorted(metrics.items()))


@hookimpl
def register_commands(cli):
    @cli.command(name="faq-stats")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def faq_stats(path: Path) -> None:
        """How many questions a Markdown FAQ file holds, and how long its answers are."""
        pairs = faq_pairs(path)
        words = [len(answer.split()) for _, _, answer in pairs]
        click.echo(f"{path}: {len(pairs)} questions, answers of {min(words)} to {max(words)} words")
