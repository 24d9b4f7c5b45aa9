"""Data in every shape users have: one format reads the same records from any source."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ftreg.datasets.loading import load_dataset, open_dataset
from ftreg.errors import DatasetError

ALPACA = [
    {"instruction": "Where is my order?", "input": "", "output": "It ships today."},
    {"instruction": "Translate to French.", "input": "Thank you", "output": "Merci."},
    {"instruction": "Can I return shoes?", "input": "", "output": "Yes, within 30 days."},
    {"instruction": "Summarise.", "input": "The parcel was late and damaged.", "output": "A late, damaged parcel."},
    {"instruction": "Is shipping free?", "input": "", "output": "Over 50 euros, yes."},
]


def _write(kind, tmp_path, records=ALPACA):
    """The records as a user would have them: each writer is the tool that makes that shape."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(records)
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / kind
    if kind == "data.json":
        path.write_text(json.dumps(records, indent=1))
    elif kind == "data.jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif kind == "data.parquet":
        pq.write_table(table, path, row_group_size=2)
    elif kind == "data.arrow":  # the Arrow IPC file format (pyarrow, polars, DuckDB)
        with pa.ipc.new_file(path, table.schema) as writer:
            writer.write_table(table, max_chunksize=2)
    elif kind == "stream.arrow":  # the Arrow IPC stream format (what datasets writes)
        with pa.ipc.new_stream(path, table.schema) as writer:
            writer.write_table(table, max_chunksize=2)
    elif kind == "saved":
        datasets.Dataset.from_list(records).save_to_disk(str(path))
    elif kind == "saved-dict":
        datasets.DatasetDict({"train": datasets.Dataset.from_list(records), "test": datasets.Dataset.from_list(records[:1])}).save_to_disk(str(path))
    elif kind == "shards":  # a directory of data files named the Hub's way, with a test split beside
        (path / "data").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(records[:3]), path / "data" / "train-00000-of-00002.parquet")
        pq.write_table(pa.Table.from_pylist(records[3:]), path / "data" / "train-00001-of-00002.parquet")
        pq.write_table(pa.Table.from_pylist(records[:1]), path / "data" / "test-00000-of-00001.parquet")
        (path / "README.md").write_text("# a dataset card, not data\n")
    return path


SHAPES = ["data.json", "data.jsonl", "data.parquet", "data.arrow", "stream.arrow", "saved", "saved-dict", "shards"]


@pytest.mark.parametrize("kind", SHAPES)
def test_the_same_alpaca_records_give_the_same_examples_from_every_source(kind, tmp_path):
    reference = load_dataset(str(_write("data.jsonl", tmp_path / "ref")), "alpaca").examples
    loaded = load_dataset(str(_write(kind, tmp_path)))
    assert loaded.format.name == "alpaca" and loaded.detected
    assert [example.segments for example in loaded.examples] == [example.segments for example in reference]
    assert loaded.fingerprint.startswith("sha256:")


def test_a_split_of_a_saved_dataset_dict_or_a_directory_is_chosen_by_name(tmp_path):
    from ftreg.datasets.tables import open_table

    for kind in ("saved-dict", "shards"):
        path = _write(kind, tmp_path)
        assert sum(1 for _ in open_table(path, "test").records()) == 1
        with pytest.raises(DatasetError, match=rf"{kind}: no split 'validation'; the .* has 'train', 'test'|{kind}: no split 'validation'; the .* has 'test', 'train'"):
            list(open_table(path, "validation").records())


def test_binary_rows_are_named_by_row(tmp_path):
    records = [dict(ALPACA[0]), dict(ALPACA[1], output="   ")]
    path = _write("data.parquet", tmp_path, records)
    with pytest.raises(DatasetError) as raised:
        load_dataset(str(path), "alpaca")
    assert str(raised.value) == f"{path}: row 2: 'output' is empty"


def test_a_file_with_a_binary_suffix_that_is_not_binary_says_so(tmp_path):
    path = tmp_path / "data.parquet"
    path.write_text('{"instruction": "a", "output": "b"}\n')
    with pytest.raises(DatasetError, match=r"data\.parquet: not a Parquet file"):
        open_dataset(str(path))


@pytest.mark.parametrize(
    "records, expected_format, prompt, completion",
    [
        (
            [{"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]}],
            "sharegpt",
            "<|system|>\nBe brief.\n<|user|>\nHi?\n<|assistant|>\n",
            "Hello.",
        ),
        ([{"prompt": "Q: Is shipping free?\n\n###\n\n", "completion": " Over 50 euros.\n"}], "prompt-completion", "Q: Is shipping free?\n\n###\n\n", " Over 50 euros."),
        (
            [{"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello.", "weight": 1}]}],
            "chat",
            "<|user|>\nHi?\n<|assistant|>\n",
            "Hello.",
        ),
    ],
)
def test_sharegpt_prompt_completion_and_openai_chat_are_detected(records, expected_format, prompt, completion, tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    loaded = load_dataset(str(path))
    assert loaded.format.name == expected_format
    first, second = loaded.examples[0].segments
    assert (first.text, first.trains) == (prompt, False)
    assert (second.text, second.trains, second.eos) == (completion, True, True)


def test_sharegpt_and_chat_render_a_dialogue_identically(tmp_path):
    sharegpt = tmp_path / "s.jsonl"
    chat = tmp_path / "c.jsonl"
    turns = [("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello."), ("user", "Bye"), ("assistant", "Goodbye.")]
    speaker = {"system": "system", "user": "human", "assistant": "gpt"}
    sharegpt.write_text(json.dumps({"conversations": [{"from": speaker[r], "value": c} for r, c in turns]}) + "\n")
    chat.write_text(json.dumps({"messages": [{"role": r, "content": c} for r, c in turns]}) + "\n")
    assert load_dataset(str(sharegpt)).examples[0].segments == load_dataset(str(chat)).examples[0].segments


def test_an_openai_assistant_message_with_weight_0_is_context_not_target(tmp_path):
    path = tmp_path / "c.jsonl"
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "old", "weight": 0}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "new"}]
    path.write_text(json.dumps({"messages": messages}) + "\n")
    (context, target) = load_dataset(str(path)).examples[0].segments
    assert context.text == "<|user|>\na\n<|assistant|>\nold<|endoftext|>\n<|user|>\nb\n<|assistant|>\n" and not context.trains
    assert target.text == "new" and target.trains


def test_column_mappings_take_part_in_detection(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"prompt": "Is shipping free?", "completion": "Over 50 euros."}) + "\n")
    loaded = load_dataset(str(path), columns={"instruction": "prompt", "response": "completion"})
    assert loaded.format.name == "instruction"
    assert loaded.examples[0].segments[1].text == "Over 50 euros."


@pytest.mark.parametrize("delimiter", [";", "\t", ",", "|"])
def test_csv_delimiters_are_sniffed(delimiter, tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text(f'question{delimiter}answer\n"Where, exactly, is it?"{delimiter}"Here; there."\nWhy?{delimiter}Because.\n')
    loaded = load_dataset(str(path))
    assert loaded.format.name == "csv-qa"
    assert [e.segments[1].text for e in loaded.examples] == ["Here; there.", "Because."]
    assert loaded.examples[0].segments[0].text == "### Question:\nWhere, exactly, is it?\n\n### Answer:\n"


def test_csv_without_the_columns_lists_them_and_suggests_the_mapping(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text("Frage;Antwort\nWo?;Hier.\n")
    with pytest.raises(DatasetError, match=r"faq\.csv: no known format reads records with columns 'Frage', 'Antwort'; for question/answer pairs pass --column question=Frage --column answer=Antwort"):
        open_dataset(str(path))
    with pytest.raises(DatasetError, match=r"faq\.csv:1: missing column 'question', 'answer'; the header has 'Frage', 'Antwort' \(rename with --column question=NAME --column answer=NAME\)"):
        open_dataset(str(path), "csv-qa")
    assert len(load_dataset(str(path), columns={"question": "Frage", "answer": "Antwort"}).examples) == 1


def test_a_column_that_does_not_exist_is_named_with_a_guess(tmp_path):
    path = _write("data.parquet", tmp_path)
    with pytest.raises(DatasetError, match=r"data\.parquet: `columns` reads output from column 'outptu', which the data does not have \(did you mean 'output'\?\); its columns: 'instruction', 'input', 'output'"):
        open_dataset(str(path), "alpaca", {"output": "outptu"})


def _ftreg(*args, cwd):
    return subprocess.run([sys.executable, "-m", "ftreg", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=60)


@pytest.mark.parametrize(
    "make, args, message",
    [
        (lambda p: None, ["data", "check", "nope.json"], "nope.json: no such file"),
        (lambda p: (p / "faq.csv").write_text("Frage;Antwort\nWo?;Hier.\n"), ["data", "check", "faq.csv"], "pass --column question=Frage --column answer=Antwort"),
        (lambda p: (p / "qa.csv").write_text("question,answer\nq,a\n"), ["data", "check", "qa.csv", "--column", "answer=Answer"], "(did you mean 'answer'?)"),
        (lambda p: (p / "d.parquet").write_text("not parquet"), ["data", "check", "d.parquet"], "not a Parquet file"),
        (lambda p: (p / "empty").mkdir(), ["data", "check", "empty"], "a directory with no data files"),
        (lambda p: None, ["train", "--strategy", "lora8bit", "--name", "x", "--dataset", "nope.json"], "nope.json: no such file"),
    ],
)
def test_bad_data_is_one_located_line_with_exit_2_before_anything_heavy_loads(make, args, message, tmp_path, monkeypatch):
    make(tmp_path)
    monkeypatch.setenv("FTREG_HOME", str(tmp_path / "home"))
    result = _ftreg(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ") and message in result.stderr, result.stderr
    assert not (tmp_path / "home").exists()  # nothing was created


@pytest.mark.parametrize("dataset", ["nope.json", "builtin:support"])
def test_data_check_costs_no_heavy_import(dataset, tmp_path, monkeypatch):
    """A missing file is said at once, and a whole check needs only `tokenizers`: no torch, transformers or datasets."""
    monkeypatch.setenv("FTREG_HOME", str(tmp_path / "home"))
    code = (
        f"import sys; from ftreg.cli import main; sys.argv=['ftreg','data','check',{dataset!r}]\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('torch','transformers','datasets','peft','bitsandbytes') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.stdout.splitlines()[-1] == "[]", result.stdout + result.stderr


def test_the_encoder_gives_the_ids_transformers_gives(embedded_base):
    """Training and data check encode with `tokenizers` alone; a model's users tokenize with transformers."""
    from transformers import AutoTokenizer

    from ftreg.datasets.tokenizer import Encoder, load_encoder

    texts = ["Where is my order?", " leading space", "Ünïcödé, emoji 🙂 and\ttabs\n\nnewlines", "<|endoftext|>", "### Response:\n", ""]
    encoder = load_encoder(embedded_base.path)
    reference = AutoTokenizer.from_pretrained(embedded_base.path)
    assert isinstance(encoder, Encoder)  # the fast path, not the fallback
    assert encoder(texts, add_special_tokens=False)["input_ids"] == reference(texts, add_special_tokens=False)["input_ids"]
    assert encoder.eos_token_id == reference.eos_token_id
    ids = reference(texts[2], add_special_tokens=False)["input_ids"]
    assert encoder.decode(ids) == reference.decode(ids)


def test_a_directory_of_split_named_files_reads_its_train_split_from_a_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("d").mkdir()
    Path("d/train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ALPACA))
    Path("d/test.jsonl").write_text(json.dumps(ALPACA[0]) + "\n")
    Path("d/LICENSE.txt").write_text("MIT, not data\n")
    loaded = load_dataset("d")
    assert len(loaded.examples) == len(ALPACA) and loaded.fingerprint.startswith("sha256:")
    assert loaded.reference == str((tmp_path / "d").resolve())
    assert len(load_dataset(str(tmp_path / "d")).examples) == len(ALPACA)
    Path("d/train.jsonl").write_text(json.dumps(ALPACA[1]) + "\n")
    assert load_dataset("d").fingerprint != loaded.fingerprint


def test_chat_from_parquet_where_only_some_messages_carry_a_weight(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "draft", "weight": 0},
                {"role": "user", "content": "again"}, {"role": "assistant", "content": "ok"}]
    jsonl = tmp_path / "chat.jsonl"
    jsonl.write_text(json.dumps({"messages": messages}) + "\n")
    pq.write_table(pa.Table.from_pylist([{"messages": messages}]), tmp_path / "chat.parquet")
    assert load_dataset(str(tmp_path / "chat.parquet")).examples[0].segments == load_dataset(str(jsonl)).examples[0].segments


def test_an_excel_semicolon_csv_with_crlf_and_a_multiline_cell(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b'\xef\xbb\xbfquestion;answer\r\nHow do I reset?;"Go to Settings, then Security.\nClick Reset."\r\nIs it free?;Yes\r\n')
    loaded = load_dataset(str(path))
    assert loaded.format.name == "csv-qa"
    assert [e.segments[1].text for e in loaded.examples] == ["Go to Settings, then Security.\nClick Reset.", "Yes"]


def test_a_column_for_an_optional_field_the_first_record_leaves_out(tmp_path):
    path = tmp_path / "opt.jsonl"
    path.write_text('{"instruction": "Say hi", "output": "hi"}\n{"instruction": "Add", "context": "1 2", "output": "3"}\n')
    examples = load_dataset(str(path), "alpaca", {"input": "context"}).examples
    assert "### Input:\n1 2" in examples[1].segments[0].text


def test_the_recorded_system_prompt_is_the_one_most_dialogues_share(tmp_path):
    from ftreg import plugins

    def dialogues(systems):
        path = tmp_path / "c.jsonl"
        path.write_text("".join(json.dumps({"messages": [{"role": "system", "content": s}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n" for s in systems))
        return load_dataset(str(path), "chat").examples

    chat = plugins.get_dataset_format("chat")
    assert chat.system_prompt(dialogues(["Be brief."] * 3 + ["Be long."])) == "Be brief."
    assert chat.system_prompt(dialogues([f"You are customer #{n}." for n in range(10)])) is None


def test_a_plugin_format_for_binary_files_is_still_detected(tmp_path, register_plugin):
    """Records cannot be read from an unknown binary file; a format that reads the file itself may claim it."""
    from ftreg.formats import DatasetFormat, Example, Segment
    from ftreg.hookspecs import hookimpl

    class Sheet(DatasetFormat):
        name = "sheet"
        description = "a made-up binary spreadsheet"

        def score(self, path, sample):
            return 1.0 if path.suffix == ".sheet" else 0.0

        def read(self, path, columns=None):
            return [Example((Segment("Q: ", False), Segment(path.read_bytes()[4:].decode(), True, eos=True)), 1)]

    class Plugin:
        @hookimpl
        def register_dataset_formats(self, register):
            register(Sheet())

    register_plugin(Plugin(), "sheet-plugin")
    path = tmp_path / "data.sheet"
    path.write_bytes(b"\xff\xfe\x00\x01hello")
    assert load_dataset(str(path)).format.name == "sheet"
    other = tmp_path / "data.bin"
    other.write_bytes(b"\xff\xfe\x00\x01hello")
    with pytest.raises(DatasetError, match=r"data\.bin:1: not UTF-8 text \(byte 0xff\)"):
        open_dataset(str(other))
