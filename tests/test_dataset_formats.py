"""The built-in dataset formats: reading, detection, `ftreg data check`, and training end to end."""

import json
import shutil
from pathlib import Path

import pytest

from ftreg import plugins
from ftreg.errors import DatasetError
from ftreg.datasets.detect import detect_format
from ftreg.formats import Segment

FIXTURES = Path(__file__).parent / "fixtures"
# fixture -> (format, examples, extra CLI arguments)
CASES = {
    "instruction.json": ("instruction", 4, []),
    "alpaca.jsonl": ("alpaca", 4, []),
    "lines.txt": ("text", 4, []),
    "qa.csv": ("csv-qa", 3, []),
    "qa.tsv": ("csv-qa", 2, ["--column", "question=Q", "--column", "answer=A"]),
    "chat.jsonl": ("chat", 3, []),
}


def read(format_name, fixture, columns=None):
    return plugins.get_dataset_format(format_name).read(FIXTURES / fixture, columns)


def test_alpaca_prompts_with_and_without_input():
    examples = read("alpaca", "alpaca.jsonl")
    without, with_input = examples[0].segments[0].text, examples[1].segments[0].text
    assert without.startswith("Below is an instruction that describes a task. Write a response")
    assert "### Input:" not in without and without.endswith("### Instruction:\nSummarise the return policy.\n\n### Response:\n")
    assert "paired with an input" in with_input and "### Input:\nWhere is my order?\n\n### Response:\n" in with_input
    assert examples[1].segments[1] == Segment("Où est ma commande ?", True, eos=True)
    assert [e.line for e in examples] == [1, 2, 3, 4]


def test_text_lines_all_carry_loss():
    examples = read("text", "lines.txt")
    assert [e.line for e in examples] == [1, 3, 4, 5]
    assert all(len(e.segments) == 1 and e.segments[0].trains for e in examples)


def test_csv_with_bom_quotes_and_embedded_newlines():
    examples = read("csv-qa", "qa.csv")
    assert [e.line for e in examples] == [2, 3, 5]
    assert examples[0].segments[0].text == "### Question:\nDo you ship to Canada?\n\n### Answer:\n"
    assert examples[0].segments[1].text == "Yes, to Canada, the UK, the EU and Australia."
    assert examples[1].segments[1].text == "Yes.\nPayPal and Apple Pay both work at checkout."


def test_tsv_with_renamed_columns():
    examples = read("csv-qa", "qa.tsv", {"question": "Q", "answer": "A"})
    assert [e.segments[1].text for e in examples] == ["No, we are online only.", "No, they never expire."]


def test_chat_trains_on_assistant_turns_only():
    first = read("chat", "chat.jsonl")[0]
    assert first.segments == (
        Segment("<|system|>\nYou are Northwind's support assistant.\n<|user|>\nWhere is my order?\n<|assistant|>\n", False),
        Segment("It shipped yesterday; the tracking link is in your email.", True, eos=True),
        Segment("\n<|user|>\nThanks!\n<|assistant|>\n", False),
        Segment("You're welcome.", True, eos=True),
    )
    second = read("chat", "chat.jsonl")[1]
    assert second.segments[0].text == plugins.get_dataset_format("chat").render_prompt("Can I change my address?")


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_detection(fixture):
    assert detect_format(FIXTURES / fixture, plugins.dataset_formats()).name == CASES[fixture][0]


def test_detection_refuses_a_tie_and_lists_candidates(tmp_path):
    path = tmp_path / "both.json"
    path.write_text(json.dumps([{"instruction": "a", "response": "b", "output": "c"}]))
    with pytest.raises(DatasetError, match=r"both\.json: the file matches (alpaca and instruction|instruction and alpaca) equally; pass `format` \(scores: "):
        detect_format(path, plugins.dataset_formats())


def test_detection_with_no_match(tmp_path, cli_run):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps([{"prompt": "a", "completion": "b"}]))
    # The library names the setting as the Python API spells it; the CLI names the flag.
    with pytest.raises(DatasetError, match=r"odd\.json: the file matches no known format; pass `format`"):
        detect_format(path, plugins.dataset_formats())
    result = cli_run("data", "check", path)
    assert result.exit_code == 2 and "the file matches no known format; pass --format (scores:" in result.stderr
    result = cli_run("train", "--strategy", "lora8bit", "--dataset", path, "--name", "x")
    assert result.exit_code == 2 and "pass --format (scores:" in result.stderr


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_data_check_describes_each_fixture(cli_run, embedded_base, fixture):
    format_name, count, extra = CASES[fixture]
    result = cli_run("data", "check", FIXTURES / fixture, *extra, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["format"], report["detected"], report["examples"], report["truncated"]) == (format_name, True, count, 0)
    assert 0 < report["tokens"]["min"] <= report["tokens"]["median"] <= report["tokens"]["p95"] <= report["tokens"]["max"]
    assert "[[" in report["example"]["rendered"] and report["example"]["rendered"].endswith("<|endoftext|>]]")
    text = cli_run("data", "check", FIXTURES / fixture, *extra).stdout
    assert f"format:    {format_name} (detected)" in text and f"examples:  {count}" in text


def test_data_check_reports_truncation(cli_run, embedded_base):
    report = json.loads(cli_run("data", "check", FIXTURES / "instruction.json", "--max-length", "20", "--json").stdout)
    assert report["truncated"] == 4 and report["max_length"] == 20


@pytest.mark.slow
@pytest.mark.parametrize("fixture", sorted(CASES))
def test_each_format_trains_an_adapter(cli_run, embedded_base, registry, fixture):
    format_name, count, extra = CASES[fixture]
    result = cli_run("train", "--strategy", "lora8bit", "--dataset", FIXTURES / fixture, *extra, "--name", "fmt",
                     "--max-steps", "2", "--batch-size", "2", "--grad-accum", "1", "--eval-split", "0.3")
    assert result.exit_code == 0, result.output
    entry = registry.resolve("fmt")
    assert entry.manifest["dataset"]["format"] == format_name and entry.manifest["dataset"]["examples"] == count
    assert entry.manifest["prompt_template"] == plugins.get_dataset_format(format_name).prompt_template
    assert f"detected format '{format_name}'" in result.stderr


@pytest.mark.slow
def test_eval_dataset_instead_of_split(cli_run, embedded_base, registry, tmp_path):
    held_out = tmp_path / "held.json"
    shutil.copy(FIXTURES / "instruction.json", held_out)
    result = cli_run("train", "--strategy", "lora8bit", "--dataset", FIXTURES / "instruction.json", "--eval-dataset", held_out,
                     "--name", "ev", "--max-steps", "1", "--batch-size", "2", "--grad-accum", "1")
    assert result.exit_code == 0, result.output
    dataset = registry.resolve("ev").manifest["dataset"]
    assert dataset["train_examples"] == 4 and dataset["eval_examples"] == 4
    assert dataset["eval"]["source"] == str(held_out)
    assert "eval_loss" in registry.resolve("ev").metrics
