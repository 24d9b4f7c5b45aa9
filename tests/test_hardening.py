"""Hardening: bad input is one line naming the problem, and no fault loses or forges a version."""

import json
import sqlite3

import pytest

from conftest import publish_files, write_json


@pytest.fixture
def dataset(tmp_path):
    return write_json(tmp_path / "d.json", [{"instruction": f"q{i}", "response": f"answer {i}"} for i in range(6)])


def _one_line(result, message):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    # Notes (a detected format, the run's id) may come first; the error is one line, the last.
    assert lines[-1].startswith("Error: ") and message in lines[-1] and result.stderr.count("Error") == 1, result.stderr
    assert "Traceback" not in result.output


TRAIN = ["train", "--strategy", "fake-adapter", "--name", "x"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "inf"], "epochs must be a finite number, got inf"),
        (["--weight-decay", "inf"], "weight_decay must be a finite number, got inf"),
        (["--max-grad-norm", "inf"], "max_grad_norm must be a finite number, got inf"),
        (["--learning-rate", "nan"], "learning_rate must be in (0, 1), got nan"),
        (["--seed", "-1"], "seed must be in [0, 2**32), got -1"),
        (["--seed", str(2**32)], "seed must be in [0, 2**32), got 4294967296"),
        (["-o", "loss=nan", "-o", "steps=1"], "training diverged (train_loss=nan); nothing was published: lower --learning-rate or --max-grad-norm"),
    ],
)
def test_non_finite_and_out_of_range_settings_are_refused(cli_run, fake_strategies, embedded_base, registry, dataset, args, message):
    _one_line(cli_run(*TRAIN, "--dataset", dataset, *args), message)
    assert not registry.exists("x")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--temperature", "inf"], "temperature is out of range: inf"),
        (["--repetition-penalty", "inf"], "repetition_penalty is out of range: inf"),
    ],
)
def test_non_finite_generation_settings_are_refused(cli_run, args, message):
    _one_line(cli_run("generate", "--base", "tiny-gpt2", *args, "Hello"), message)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("c.toml", 'batch_size = 2.5\n', "batch_size must be an integer, got 2.5"),
        ("c.toml", 'columns = "x"\n', "columns must be a table"),
        ("c.toml", "epochs = true\n", "epochs must be a number, got True"),
        ("c.toml", "[columns]\nquestion = 5\n", 'columns must be a table of FIELD = "NAME"'),
        ("c.yaml", b"name: caf\xe9\n", "c.yaml: not UTF-8 text"),
    ],
)
def test_bad_config_values_name_the_field(cli_run, fake_strategies, dataset, tmp_path, name, content, message):
    config = tmp_path / name
    config.write_bytes(content if isinstance(content, bytes) else content.encode())
    _one_line(cli_run(*TRAIN, "--dataset", dataset, "--config", config, "--print-config"), message)


def test_yaml_numbers_without_a_dot_are_read_as_numbers(cli_run, fake_strategies, dataset, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("learning_rate: 2e-4\nepochs: 3\n")  # YAML 1.1 reads 2e-4 as a string
    result = cli_run(*TRAIN, "--dataset", dataset, "--config", config, "--print-config")
    assert result.exit_code == 0, result.output
    assert "learning_rate = 0.0002\n" in result.stdout and "epochs = 3.0\n" in result.stdout


def test_list_json_is_strict_json_even_with_a_nan_on_record(cli_run, registry):
    publish_files(registry, "old", metrics={"eval_loss": float("nan"), "train_loss": 1.5})
    result = cli_run("list", "--json")
    assert result.exit_code == 0 and "NaN" not in result.stdout
    assert json.loads(result.stdout)[0]["metrics"] == {"eval_loss": None, "train_loss": 1.5}


def test_a_foreign_sqlite_database_is_refused_not_migrated(cli_run, ftreg_home):
    ftreg_home.mkdir()
    other = sqlite3.connect(ftreg_home / "registry.db")
    other.execute("CREATE TABLE invoices (id INTEGER)")
    other.commit()
    other.close()
    _one_line(cli_run("list"), "registry.db is another program's SQLite database (tables: invoices), not an ftreg registry")
    tables = {name for (name,) in sqlite3.connect(ftreg_home / "registry.db").execute("SELECT name FROM sqlite_master")}
    assert tables == {"invoices"}  # untouched


@pytest.mark.parametrize("damage", ["garbage", "directory"])
def test_a_damaged_index_is_one_line(cli_run, ftreg_home, damage):
    ftreg_home.mkdir()
    if damage == "directory":
        (ftreg_home / "registry.db").mkdir()
        _one_line(cli_run("list"), "registry.db is not a file")
    else:
        (ftreg_home / "registry.db").write_bytes(b"this is not a database at all" * 100)
        _one_line(cli_run("list"), "the registry index cannot be used: file is not a database")


def test_resuming_a_run_that_already_published_is_refused(cli_run, registry):
    from ftreg.training.runs import load_run, start_run

    run = start_run(registry, {"strategy": "scratch", "dataset": "builtin:support", "name": "dup"}, None)
    (run.checkpoint_dir / "step-2").mkdir(parents=True)
    (run.checkpoint_dir / "step-2" / "loop_state.json").write_text("{}")
    run.update(pid=2**22 + 12345)  # a process that no longer exists: killed after publishing, before its record said so
    publish_files(registry, "dup", kind="checkpoint", run=run.id)
    assert load_run(registry, run.id).resumable
    _one_line(cli_run("train", "--resume", run.id), f"run {run.id} already published dup-v1; resuming would publish it twice")
    assert [entry.ref for entry in registry.entries("dup")] == ["dup-v1"]
    assert load_run(registry, run.id).record["published"] == "dup-v1"


def test_verify_flags_planted_files_and_an_edited_manifest(cli_run, registry):
    entry = publish_files(registry, "v")
    (entry.path / "pytorch_model.bin").write_bytes(b"planted pickle")
    manifest = json.loads((entry.path / "manifest.json").read_text())
    manifest["metrics"] = {"eval_loss": 0.01}
    (entry.path / "manifest.json").write_text(json.dumps(manifest))
    result = cli_run("verify", "v-v1")
    assert result.exit_code == 1
    assert "v-v1: file pytorch_model.bin was not recorded at publish (added since?)" in result.stderr
    assert "v-v1: manifest.json differs from the registry index's copy (edited or damaged)" in result.stderr


def test_a_planted_file_stops_push_and_load(hub, cli_run, registry):
    from huggingface_hub import HfApi

    entry = publish_files(registry, "p", kind="checkpoint", files={"model.safetensors": b"weights", "config.json": b"{}"})
    (entry.path / "pytorch_model.bin").write_bytes(b"planted pickle")
    _one_line(cli_run("push", "p-v1", "--repo", "alice/p"), "p-v1: file pytorch_model.bin was not recorded at publish")
    assert not HfApi().repo_exists("alice/p")
    _one_line(cli_run("generate", "--base", "p-v1", "Hi"), "p-v1: file pytorch_model.bin was not recorded at publish")
