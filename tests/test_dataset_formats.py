"""The built-in dataset formats: reading, detection, `ftreg data check`, and training end to end."""

import json
import shutil
from pathlib import Path

import pytest

from ftreg import plugins
from ftreg.datasets.loading import load_dataset, open_dataset
from ftreg.errors import DatasetError
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
    "sharegpt.jsonl": ("sharegpt", 3, []),
    "prompt_completion.jsonl": ("prompt-completion", 3, []),
}


def read(format_name, fixture, columns=None):
    return load_dataset(str(FIXTURES / fixture), format_name, columns).examples


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


def _columns(arguments):
    return dict(value.split("=") for flag, value in zip(arguments[::2], arguments[1::2]) if flag == "--column")


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_detection(fixture):
    assert open_dataset(str(FIXTURES / fixture), columns=_columns(CASES[fixture][2])).format.name == CASES[fixture][0]


def test_detection_refuses_a_tie_and_lists_candidates(tmp_path):
    path = tmp_path / "both.json"
    path.write_text(json.dumps([{"instruction": "a", "response": "b", "output": "c"}]))
    with pytest.raises(DatasetError, match=r"both\.json: the data matches (alpaca and instruction|instruction and alpaca) equally; pass `format` \(scores: "):
        open_dataset(str(path))


def test_detection_with_no_match_names_the_columns_and_suggests_a_mapping(tmp_path, cli_run):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps([{"Frage": "a", "Antwort": "b"}]))
    # The library names the setting as the Python API spells it; the CLI names the flag.
    expected = "no known format reads records with columns 'Frage', 'Antwort'; for question/answer pairs pass --column question=Frage --column answer=Antwort"
    with pytest.raises(DatasetError, match=rf"odd\.json: {expected}; or pass `format`"):
        open_dataset(str(path))
    result = cli_run("data", "check", path)
    assert result.exit_code == 2 and f"{expected}; or pass --format (scores:" in result.stderr
    result = cli_run("train", "--strategy", "lora8bit", "--dataset", path, "--name", "x")
    assert result.exit_code == 2 and "or pass --format (scores:" in result.stderr


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
    longest = json.loads(cli_run("data", "check", FIXTURES / "instruction.json", "--json").stdout)["tokens"]["max"]
    report = json.loads(cli_run("data", "check", FIXTURES / "instruction.json", "--max-length", longest - 1, "--json").stdout)
    assert report["truncated"] >= 1 and report["max_length"] == longest - 1


def test_data_check_refuses_what_training_refuses(cli_run, embedded_base, registry):
    """`--max-length 20` leaves no response token in any example: both commands say so, exit 2, in the same words."""
    data = FIXTURES / "instruction.json"
    check = cli_run("data", "check", data, "--max-length", "20")
    train = cli_run("train", "--strategy", "lora8bit", "--name", "cut", "--dataset", data, "--max-length", "20")
    assert check.exit_code == train.exit_code == 2, (check.output, train.output)
    expected = f"Error: {data}: no example is left to train on (--max-length 20 cut every loss-carrying token"
    assert check.stderr.startswith(expected) and expected in train.stderr, (check.stderr, train.stderr)
    assert [entry.name for entry in registry.entries()] == ["tiny-gpt2"]


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
