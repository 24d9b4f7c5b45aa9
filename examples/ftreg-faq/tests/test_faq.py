"""The plugin as ftreg loads it from its entry point: the format, the loss log and the command."""

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from ftreg_faq import LOSS_LOG

import ftreg
from ftreg import plugins

SHOP = Path(__file__).with_name("shop.md")


def test_the_format_is_installed_and_detected():
    assert "faq" in plugins.dataset_formats()
    report = ftreg.check_dataset(str(SHOP))
    assert report["format"] == "faq" and report["examples"] == 3


def test_questions_are_prompts_and_answers_carry_the_loss():
    examples = plugins.get_dataset_format("faq").read(SHOP)
    first = examples[0]
    assert [segment.text for segment in first.segments] == ["Q: How long does delivery take?\nA: ", "Standard delivery takes 3 to 5 business days.\nExpress arrives the next business day."]
    assert [segment.trains for segment in first.segments] == [False, True] and first.line == 3


def test_a_question_without_an_answer_is_an_error_naming_its_line(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("## First?\nYes.\n\n## Second?\n\n")
    with pytest.raises(ftreg.DatasetError, match=r"bad.md:4: the question 'Second\?' has no answer below it"):
        plugins.get_dataset_format("faq").read(bad)


def test_training_writes_the_loss_log_beside_the_run(fake_strategies, embedded_base, registry):
    spec = ftreg.settings({"strategy": "fake-adapter", "dataset": str(SHOP), "name": "shop", "eval_split": 0}, registry=registry)
    entry = ftreg.train(spec, registry=registry, show_progress=False)
    assert entry.manifest["dataset"]["format"] == "faq"
    run = ftreg.runs(registry=registry)[-1]
    with (run.path / LOSS_LOG).open() as file:
        rows = list(csv.DictReader(file))
    assert rows and {row["name"] for row in rows} >= {"loss"} and [int(row["step"]) for row in rows] == sorted(int(row["step"]) for row in rows)


def test_the_command_counts_the_questions():
    from ftreg.cli import cli

    result = CliRunner().invoke(cli, ["faq-stats", str(SHOP)])
    assert result.exit_code == 0 and "3 questions, answers of 8 to 14 words" in result.output
