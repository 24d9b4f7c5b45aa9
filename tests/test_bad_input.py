"""Bad data: one run reports every problem with file and line, exits 2, and publishes nothing."""

import json
import re

import pytest

from conftest import publish_files

LONG = "x" * 120_000
CASES = {
    "invalid_json": ("data.json", '[{"instruction": "a", "response": "b"},\n {"instruction": "c" "response": "d"}]', [r"data\.json:2:22: invalid JSON: Expecting ',' delimiter"]),
    "invalid_jsonl": ("data.jsonl", '{"instruction": "a", "response": "b"}\n{"instruction": "c", "response": "d"\n', [r"data\.jsonl:2:37: invalid JSON"]),
    "truncated_file": ("data.json", '[{"instruction": "a", "response": "b"},\n {"instruction": "c", "respo', [r"data\.json:2:\d+: invalid JSON"]),
    "wrong_top_level_type": ("data.json", '{\n "instruction": "a",\n "response": "b"\n}\n', [r"data\.json:1: the file is one JSON dict; expected a JSON array of records or JSON Lines"]),
    "record_not_an_object": ("data.json", '[{"instruction": "a", "response": "b"},\n "just a string"]', [r"data\.json:2: expected an object with keys instruction, response, got str"]),
    "misspelled_key": ("data.json", '[{"instruction": "a", "respnse": "b"}]', [r"data\.json:1: missing key 'response' \(found 'respnse': misspelled\?\)"]),
    "non_string_value": ("data.json", '[{"instruction": ["a"], "response": "b"}]', [r"data\.json:1: 'instruction' must be a string, got list"]),
    "empty_string": ("data.json", '[{"instruction": "a", "response": ""}]', [r"data\.json:1: 'response' is empty"]),
    "empty_file": ("data.json", "", [r"data\.json: the file is empty"]),
    "no_examples": ("data.json", "[]", [r"data\.json: the dataset has no examples"]),
    "not_utf8": ("data.json", b'[{"instruction": "a", "response": "\xff"}]', [r"data\.json:1: not UTF-8 text \(byte 0xff\)"]),
    "csv_missing_column": ("qa.csv", "question,reply\nq,a\n", [r"qa\.csv:1: missing column 'answer'; the header has 'question', 'reply'"]),
    "csv_ragged_row": ("qa.csv", "question,answer\nq1,a1\nq2,a2,extra\nq3\n", [r"qa\.csv:3: row has 3 fields, the header has 2", r"qa\.csv:4: row has 1 fields, the header has 2"]),
    "absurdly_long_row": ("data.json", json.dumps([{"instruction": "a", "response": LONG}]), [r"data\.json:1: the example is 120,\d{3} characters long; the limit is 100,000"]),
    "several_problems": ("data.jsonl", '{"instruction": "a"}\n{"response": "b"}\n{"instruction": 3, "response": "c"}\n', [
        r"data\.jsonl:1: missing key 'response'", r"data\.jsonl:2: missing key 'instruction'", r"data\.jsonl:3: 'instruction' must be a string, got int"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_dataset(case, cli_run, registry, tmp_path):
    name, content, patterns = CASES[case]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    publish_files(registry, "support")
    before = [(e.ref, e.manifest) for e in registry.entries()]
    fmt = ["--format", "csv-qa"] if name.endswith(".csv") else ["--format", "instruction"]
    for command in (["train", "--strategy", "lora8bit", "--name", "support", *fmt, "--dataset", path], ["data", "check", *fmt, path]):
        result = cli_run(*command)
        assert result.exit_code == 2, (command, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == len(patterns), result.stderr
        for line, pattern in zip(lines, patterns):
            assert re.search(pattern, line), (pattern, line)
        assert "Traceback" not in result.output
    assert [(e.ref, e.manifest) for e in registry.entries()] == before
    assert list(registry.tmp.iterdir()) == []


@pytest.mark.slow
def test_duplicates_warn_but_train(cli_run, embedded_base, registry, tmp_path):
    pair = {"instruction": "a question", "response": "an answer"}
    path = tmp_path / "dup.jsonl"
    path.write_text("\n".join(json.dumps(record) for record in [pair, {"instruction": "b", "response": "c"}, pair, pair]))
    result = cli_run("train", "--strategy", "lora8bit", "--dataset", path, "--name", "dup", "--max-steps", "1", "--eval-split", "0")
    assert result.exit_code == 0, result.output
    assert f"warning: {path}: 2 duplicate examples (lines 3, 4)" in result.stderr
    assert registry.resolve("dup").ref == "dup-v1"


def test_first_line_of_a_problem_report_names_the_file(cli_run, tmp_path):
    path = tmp_path / "data.json"
    path.write_text("[1, 2]")
    result = cli_run("data", "check", "--format", "instruction", path)
    assert result.stderr.startswith(f"Error: {path}:1: ")
