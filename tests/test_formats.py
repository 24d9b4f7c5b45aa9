import json

import pytest

from ftreg.datasets.loading import load_dataset
from ftreg.default_plugins.formats.instruction import InstructionFormat
from ftreg.errors import DatasetError

FORMAT = InstructionFormat()


def read(path):
    return load_dataset(str(path), "instruction").examples


def test_json_array_examples_keep_their_line_numbers(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('[\n {"instruction": "Hi", "response": "Hello."},\n\n {"instruction": " Bye ", "response": "Goodbye."}\n]\n')
    examples = read(path)
    assert [e.line for e in examples] == [2, 4]
    prompt, response = examples[1].segments
    assert prompt.text == "### Instruction:\nBye\n\n### Response:\n" and not prompt.trains
    assert response.text == "Goodbye." and response.trains


def test_jsonl(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"instruction": "a", "response": "b"}\n\n{"instruction": "c", "response": "d"}\n')
    assert [e.line for e in read(path)] == [1, 3]


def test_render_prompt_matches_the_training_prefix(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"instruction": "Where is my order?", "response": "On its way."}]))
    assert read(path)[0].segments[0].text == FORMAT.render_prompt("Where is my order?")


@pytest.mark.parametrize(
    "content, message",
    [
        ('[{"instruction": "a", "response": "b"},\n {"instruction": "c", "response": }]', r"d\.json:2:35: invalid JSON: Expecting value"),
        ('[{"instruction": "a", "response": "b"},\n {"instruction": "c", "respone": "d"}]', r"d\.json:2: missing key 'response' \(found 'respone': misspelled\?\)"),
        ('[{"instruction": "a", "response": 3}]', r"d\.json:1: 'response' must be a string, got int"),
        ('[{"instruction": "  ", "response": "b"}]', r"d\.json:1: 'instruction' is empty"),
        ('[["a", "b"]]', r"d\.json:1: expected an object with keys instruction, response, got list"),
        ("", r"d\.json: the file is empty"),
        ('[{"instruction": "a", "response": "b"}', r"d\.json:1:\d+: invalid JSON"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "d.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        read(path)


def test_all_problems_are_reported_at_once(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"instruction": "a"}\n{"response": "b"}\n{"instruction": "c", "response": "d"}\n')
    with pytest.raises(DatasetError) as raised:
        read(path)
    assert str(raised.value).splitlines() == [f"{path}:1: missing key 'response'", f"{path}:2: missing key 'instruction'"]


def test_not_utf8(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b'[{"instruction": "a",\n "response": "caf\xe9"}]')
    with pytest.raises(DatasetError, match=r"d\.json:2: not UTF-8 text \(byte 0xe9\)"):
        read(path)
