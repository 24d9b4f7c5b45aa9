"""Hardening: bad input is one line naming the problem, and no fault loses or forges a version."""

import json
import sqlite3

import pytest
from conftest import publish_files, safetensors_bytes, write_json


@pytest.fixture
def dataset(tmp_path):
    return write_json(tmp_path / "d.json", [{"instruction": f"q{i}", "response": f"answer {i}"} for i in range(6)])


def _one_line(result, message):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    # Notes (a detected format, the run's id) may come first; the error is one line, the last.
    assert lines[-1].startswith("Error: ") and message in lines[-1] and sum(line.startswith("Error: ") for line in lines) == 1, result.stderr
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
        (["-o", "poison=true"], "training diverged (adapter_model.safetensors=non-finite); nothing was published"),
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
    entry = publish_files(registry, "old", metrics={"eval_loss": 2.0, "train_loss": 1.5})
    # A record written before publish refused non-finite metrics.
    manifest = {**entry.manifest, "metrics": {"eval_loss": float("nan"), "train_loss": 1.5}}
    registry.db.execute("UPDATE versions SET manifest = ?", (json.dumps(manifest),))
    result = cli_run("list", "--json")
    assert result.exit_code == 0 and "NaN" not in result.stdout
    assert json.loads(result.stdout)[0]["metrics"] == {"eval_loss": None, "train_loss": 1.5}


def test_publish_refuses_what_breaks_the_manifest_schema_or_the_safetensors_format(registry):
    from ftreg import ArtifactError

    with pytest.raises(ArtifactError, match=r"metrics.eval_loss must be a finite number, not 'abc'"):
        publish_files(registry, "bad", metrics={"eval_loss": "abc"})
    with pytest.raises(ArtifactError, match=r"model.safetensors is not a valid safetensors file"):
        publish_files(registry, "bad", {"model.safetensors": (2**62).to_bytes(8, "little") + b"{}"}, kind="checkpoint")
    with pytest.raises(ArtifactError, match=r"files must be a non-empty object"):
        with registry.staging() as stage:
            registry.publish(stage, name="bad", kind="checkpoint")
    assert registry.entries() == []


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

    entry = publish_files(registry, "p", kind="checkpoint", files={"model.safetensors": safetensors_bytes("weights"), "config.json": b"{}"})
    (entry.path / "pytorch_model.bin").write_bytes(b"planted pickle")
    _one_line(cli_run("push", "p-v1", "--repo", "alice/p"), "p-v1: file pytorch_model.bin was not recorded at publish")
    assert not HfApi().repo_exists("alice/p")
    _one_line(cli_run("generate", "--base", "p-v1", "Hi"), "p-v1: file pytorch_model.bin was not recorded at publish")


def _upload(repo_id, files, tmp_path):
    from huggingface_hub import HfApi

    folder = tmp_path / repo_id.replace("/", "--")
    folder.mkdir()
    for rel, data in files.items():
        (folder / rel).write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    HfApi().create_repo(repo_id)
    HfApi().upload_folder(repo_id=repo_id, folder_path=folder)


def _valid_manifest(weights: bytes, **changes):
    import hashlib

    manifest = {"kind": "checkpoint", "files": {"model.safetensors": {"sha256": hashlib.sha256(weights).hexdigest(), "size": len(weights)}}, "metrics": {}}
    return {**manifest, **changes}


@pytest.mark.parametrize(
    "manifest, message",
    [
        (b"{not json", "its manifest.json is not valid JSON"),
        ({"metrics": {"eval_loss": "abc"}}, "metrics.eval_loss must be a finite number, not 'abc'"),
        ({"metrics": [1, 2]}, "metrics must be an object of name -> number"),
        ({"files": ["model.safetensors"]}, "files must be a non-empty object"),
        ({"kind": "lora"}, "kind must be one of adapter, checkpoint, not 'lora'"),
        ({"files": {"model.safetensors": {"size": 3}}}, "files.model.safetensors: sha256 must be 64 lowercase hex digits"),
    ],
)
def test_pull_refuses_a_manifest_that_breaks_the_schema(hub, cli_run, registry, tmp_path, manifest, message):
    weights = safetensors_bytes("w")
    if isinstance(manifest, dict):
        manifest = json.dumps(_valid_manifest(weights, **manifest)).encode()
    _upload("alice/bad", {"model.safetensors": weights, "manifest.json": manifest}, tmp_path)
    _one_line(cli_run("pull", "alice/bad", "--name", "bad"), message)
    assert registry.entries() == []


def test_pull_refuses_an_empty_repo_and_malformed_safetensors_and_drops_unlisted_files(hub, cli_run, registry, tmp_path):
    from huggingface_hub import HfApi

    HfApi().create_repo("alice/empty")
    _one_line(cli_run("pull", "alice/empty", "--name", "e"), "alice/empty@")
    _upload("alice/broken", {"model.safetensors": (2**62).to_bytes(8, "little") + b"{}"}, tmp_path)
    _one_line(cli_run("pull", "alice/broken", "--name", "b"), "model.safetensors is not a valid safetensors file")
    weights = safetensors_bytes("w")
    _upload("alice/extra", {"model.safetensors": weights, "extra.json": b"{}", "manifest.json": _valid_manifest(weights)}, tmp_path)
    pulled = cli_run("pull", "alice/extra", "--name", "x")
    assert pulled.exit_code == 0 and "has files its manifest does not list; not kept: extra.json" in pulled.stderr
    assert set(registry.resolve("x-v1").manifest["files"]) == {"model.safetensors"}
    assert [entry.ref for entry in registry.entries()] == ["x-v1"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply to read"),
        ('{"instruction": "a\\ud800", "response": "b"}\n{"instruction": "c", "response": "d"}\n', "'instruction' is not valid Unicode"),
    ],
)
def test_hostile_dataset_content_is_one_line(cli_run, registry, tmp_path, content, message):
    data = tmp_path / "d.json"
    data.write_text(content)
    _one_line(cli_run("train", "--strategy", "lora8bit", "--format", "instruction", "--dataset", data, "--name", "x"), message)


def test_a_directory_or_a_pipe_is_not_a_dataset(cli_run, tmp_path):
    import os

    _one_line(cli_run("data", "check", tmp_path), "a directory with no data files (.arrow, .csv, .json")
    os.mkfifo(tmp_path / "fifo")
    _one_line(cli_run("data", "check", tmp_path / "fifo"), "not a regular file")


def test_generation_refuses_an_empty_prompt_and_a_context_overflow(cli_run, embedded_base):
    _one_line(cli_run("generate", "--base", "tiny-gpt2", "--raw", ""), "the prompt is empty")
    _one_line(cli_run("generate", "--base", "tiny-gpt2", "--max-new-tokens", "300", "Hi"), "plus --max-new-tokens 300 exceed the model's context of 256 tokens")


def test_a_damaged_run_record_does_not_break_runs(cli_run, registry):
    from ftreg.training.runs import runs_dir, start_run

    start_run(registry, {"strategy": "scratch", "dataset": "d", "name": "ok"}, None).update(status="finished")
    broken = runs_dir(registry) / "broken-run"
    broken.mkdir()
    (broken / "run.json").write_text("{truncated")
    result = cli_run("runs", "--json")
    assert result.exit_code == 0
    statuses = {run["id"]: run["status"] for run in json.loads(result.stdout)}
    assert statuses["broken-run"] == "damaged" and "finished" in statuses.values()
    assert "broken-run" in cli_run("runs").stdout


def test_export_to_an_impossible_place_is_one_line(cli_run, fake_strategies, embedded_base, dataset, tmp_path):
    assert cli_run("train", "--strategy", "fake-checkpoint", "--dataset", dataset, "--name", "fc").exit_code == 0
    (tmp_path / "a-file").write_text("x")
    _one_line(cli_run("export", "fc", tmp_path / "a-file"), "already exists and is not an empty directory")
    _one_line(cli_run("export", "fc", tmp_path / "a-file" / "below"), "cannot write the export there")


def test_a_live_pid_is_not_a_live_run(registry):
    """A dead run whose pid now belongs to another process is interrupted: the run's lock decides, not the pid."""
    import os

    from ftreg.training.runs import start_run

    run = start_run(registry, {"strategy": "scratch", "dataset": "d", "name": "r"}, None)
    run.update(pid=os.getppid())  # a live process that is not training this run
    assert run.status == "interrupted"
    run.lock()  # as the training process holds it
    assert run.status == "running"


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["optimizer.pt", "model.safetensors"])
def test_resume_skips_a_damaged_checkpoint_for_the_next_older_one(cli_run, embedded_base, registry, dataset, damage):
    """scratch, killed after checkpoints at steps 2 and 4: a damaged step-4 is named and skipped, step-2 is used."""
    from ftreg.training.runs import list_runs

    result = cli_run("train", "--strategy", "scratch", "--dataset", dataset, "--name", "ck", "--max-steps", "6", "--save-steps", "2",
                     "--save-total-limit", "3", "--batch-size", "2", "--grad-accum", "1", "--eval-split", "0")
    assert result.exit_code == 0, result.output
    whole = registry.resolve("ck-v1")
    [run] = list_runs(registry)
    run.update(status="running", published=None)  # as if killed after step 4, its version never published
    registry.remove("ck-v1")
    newest = run.checkpoint_dir / "step-4"
    data = bytearray((newest / damage).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (newest / damage).write_bytes(bytes(data))
    resumed = cli_run("train", "--resume", run.id)
    assert resumed.exit_code == 0, resumed.output
    assert f"warning: skipping checkpoint step-4 of run {run.id}: {damage} does not match its recorded sha256" in resumed.stderr
    assert "resuming from step-2" in resumed.stderr
    again = registry.resolve("ck")
    assert again.manifest["files"]["model.safetensors"] == whole.manifest["files"]["model.safetensors"]  # the same weights


def test_column_for_a_field_the_format_does_not_have(cli_run, dataset):
    _one_line(cli_run("data", "check", dataset, "--column", "foo=bar"), "--column renames 'foo', but format 'instruction' has no such field (the fields it reads: instruction, response)")


def test_a_mistyped_registry_is_not_created_by_a_read(cli_run, tmp_path):
    typo = tmp_path / "regsitry"
    _one_line(cli_run("--registry", typo, "list"), f"no registry at {typo} (--registry); check the path")
    assert not typo.exists()
    assert cli_run("--registry", typo, "base", "init").exit_code == 0  # commands that write create it


def test_verify_reports_unlisted_store_directories_and_sweeps_orphan_locks(cli_run, registry):
    import os
    import time

    from ftreg.registry import store

    publish_files(registry, "a")
    orphan = registry.store / "a" / "v9"
    orphan.mkdir()
    result = cli_run("verify", "--all")
    assert result.exit_code == 1 and f"{orphan}: not a listed version" in result.stderr
    lock = registry.tmp / "stage-gone.lock"
    lock.write_text("")
    old = time.time() - store.STALE_AFTER_S - 10
    os.utime(lock, (old, old))
    publish_files(registry, "b")  # every publish sweeps
    assert not lock.exists()


def test_a_base_with_other_weights_is_refused_and_old_records_still_compose(cli_run, fake_strategies, embedded_base, registry, dataset, tmp_path):
    import shutil
    from pathlib import Path

    import numpy as np
    from safetensors.numpy import load_file, save_file

    from ftreg.testing import write_zero_lora

    assert cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa").exit_code == 0
    assert registry.resolve("fa").manifest["base_fingerprint"].startswith("sha256-v2:")
    noisy = tmp_path / "noisy"
    shutil.copytree(embedded_base.path, noisy)
    (noisy / "manifest.json").unlink()
    weights = load_file(str(noisy / "model.safetensors"))
    rng = np.random.default_rng(0)
    save_file({name: rng.standard_normal(tensor.shape).astype(tensor.dtype) for name, tensor in weights.items()}, str(noisy / "model.safetensors"))
    _one_line(cli_run("generate", "--adapter", "fa", "--base", noisy, "Hi"), "refusing to compose them")  # same config and tokenizer, other weights

    # A version recorded by ftreg 0.1 fingerprinted config and tokenizer only; it still composes with its base
    # (the fixture's record is of the 0.1 embedded base, so its fingerprint is remade for today's).
    from ftreg.bases.resolve import _config_digest

    old = json.loads((Path(__file__).parent / "fixtures" / "ftreg-0.1.0" / "manifest.json").read_text())
    assert old["base_fingerprint"].startswith("sha256:")
    legacy = "sha256:" + _config_digest(embedded_base.path).hex()
    with registry.staging() as stage:
        write_zero_lora(embedded_base.path, stage)
        registry.publish(stage, name="old", kind="adapter", base="tiny-gpt2-v1", base_fingerprint=legacy, base_source=old["base_source"])
    assert cli_run("generate", "--adapter", "old", "--greedy", "--max-new-tokens", "3", "Hi").exit_code == 0
    with registry.staging() as stage:
        write_zero_lora(embedded_base.path, stage)
        registry.publish(stage, name="other", kind="adapter", base="tiny-gpt2-v1", base_fingerprint=old["base_fingerprint"], base_source=old["base_source"])
    _one_line(cli_run("generate", "--adapter", "other", "Hi"), "refusing to compose them")  # a 0.1 record of another base


KILL_BEFORE_FINISHED = """
import os, signal, sys
from ftreg import Registry, plugins, settings, train
from ftreg.testing import _FakeStrategies
from ftreg.training import runs

plugins.register(_FakeStrategies(), "fake")
real_update = runs.Run.update

def update(self, **fields):
    if fields.get("status") == "finished":
        os.kill(os.getpid(), signal.SIGKILL)  # published, but the run's record never says so
    real_update(self, **fields)

runs.Run.update = update
registry = Registry(sys.argv[1])
train(settings({"strategy": "fake-adapter", "dataset": sys.argv[2], "name": "k"}, registry=registry), registry=registry, show_progress=False)
"""


def test_a_run_killed_between_publish_and_its_record_is_finished_not_resumable(cli_run, embedded_base, registry, dataset):
    import signal
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", KILL_BEFORE_FINISHED, str(registry.home), str(dataset)], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    [run] = json.loads(cli_run("runs", "--json").stdout)
    assert (run["status"], run["published"], run["resumable"]) == ("finished", "k-v1", False)
    _one_line(cli_run("train", "--resume", run["id"]), f"run {run['id']} already published k-v1; resuming would publish it twice")
    assert [entry.ref for entry in registry.entries("k")] == ["k-v1"]


KILL_IN_REMOVE = """
import os, signal, sys
from ftreg.registry import Registry

registry = Registry(sys.argv[1])
real = registry.db
when = sys.argv[2]

class Dying:
    def execute(self, sql, *args):
        if when == "before-commit" and sql == "COMMIT":
            os.kill(os.getpid(), signal.SIGKILL)
        return real.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(real, name)

registry._db = Dying()
if when == "after-commit":
    registry._discard = lambda path: os.kill(os.getpid(), signal.SIGKILL)
registry.remove("keep-v1")
"""


@pytest.mark.parametrize("when", ["before-commit", "after-commit"])
def test_rm_killed_at_any_point_never_lists_a_version_without_its_files(cli_run, registry, when):
    import signal
    import subprocess
    import sys

    entry = publish_files(registry, "keep")
    registry.close()
    child = subprocess.run([sys.executable, "-c", KILL_IN_REMOVE, str(registry.home), when], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    if when == "before-commit":
        assert registry.exists("keep-v1") and registry.problems(registry.resolve("keep-v1")) == []  # listed, files whole
    else:
        assert not registry.exists("keep-v1") and entry.path.is_dir()  # unlisted; its directory is left for gc
        assert any(path == entry.path for path, _ in registry.garbage())


def test_one_damaged_index_row_does_not_break_reading_commands(cli_run, registry):
    publish_files(registry, "good")
    publish_files(registry, "bad")
    registry.db.execute("UPDATE versions SET manifest = '{truncated' WHERE name = 'bad'")
    listed = cli_run("list")
    assert listed.exit_code == 0 and "good-v1" in listed.stdout and "bad-v1" in listed.stdout
    assert json.loads(cli_run("list", "--json").stdout)[0]["damaged"].startswith("manifest does not parse")
    verify = cli_run("verify", "--all")
    assert verify.exit_code == 1 and "bad-v1: its index row is damaged" in verify.stderr


def _tree(home):
    """Everything in a registry directory, with contents: what 'unchanged' is checked against."""
    return {str(path.relative_to(home)): path.read_bytes() if path.is_file() else None for path in sorted(home.rglob("*")) if "tmp" not in path.parts}


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


BAD_INPUTS = {
    # id: (files to write {name: content}, argv with {name} placeholders, what the one line says)
    "nested-json": ({"d.json": "[" * 50_000 + "]" * 50_000}, ["train", "--strategy", "lora8bit", "--format", "instruction", "--dataset", "{d.json}", "--name", "x"], "nested too deeply"),
    "lone-surrogate": ({"d.jsonl": '{"instruction": "\\ud800", "response": "b"}\n'}, ["train", "--strategy", "lora8bit", "--dataset", "{d.jsonl}", "--name", "x"], "not valid Unicode"),
    "epochs-inf": ({}, ["train", "--strategy", "lora8bit", "--dataset", "builtin:support", "--name", "x", "--epochs", "inf"], "epochs must be a finite number"),
    "weight-decay-inf": ({}, ["train", "--strategy", "lora8bit", "--dataset", "builtin:support", "--name", "x", "--weight-decay", "inf"], "weight_decay must be a finite number"),
    "seed-negative": ({}, ["train", "--strategy", "lora8bit", "--dataset", "builtin:support", "--name", "x", "--seed", "-1"], "seed must be in [0, 2**32)"),
    "seed-too-big": ({}, ["train", "--strategy", "lora8bit", "--dataset", "builtin:support", "--name", "x", "--seed", str(2**32)], "seed must be in [0, 2**32)"),
    "toml-columns-text": ({"c.toml": 'strategy = "lora8bit"\ndataset = "builtin:support"\nname = "x"\ncolumns = "x"\n'}, ["train", "--config", "{c.toml}"], "columns must be a table"),
    "toml-batch-float": ({"c.toml": 'strategy = "lora8bit"\ndataset = "builtin:support"\nname = "x"\nbatch_size = 2.5\n'}, ["train", "--config", "{c.toml}"], "batch_size must be an integer, got 2.5"),
    "toml-epochs-bool": ({"c.toml": 'strategy = "lora8bit"\ndataset = "builtin:support"\nname = "x"\nepochs = true\n'}, ["train", "--config", "{c.toml}"], "epochs must be a number, got True"),
    "toml-column-number": ({"c.toml": 'strategy = "lora8bit"\ndataset = "builtin:support"\nname = "x"\n[columns]\nquestion = 5\n'}, ["train", "--config", "{c.toml}"], "columns must be a table of FIELD"),
    "yaml-not-utf8": ({"c.yaml": b"name: caf\xe9\n"}, ["train", "--config", "{c.yaml}"], "c.yaml: not UTF-8 text"),
    "column-unknown-field": ({}, ["train", "--strategy", "lora8bit", "--dataset", "builtin:support", "--name", "x", "--column", "foo=bar"], "has no such field"),
    "dataset-directory": ({"dir/keep": ""}, ["data", "check", "{dir}"], "a directory with no data files"),
    "max-new-tokens-past-context": ({}, ["generate", "--base", "tiny-gpt2", "--max-new-tokens", "1000", "Hi"], "exceed the model's context"),
    "empty-raw-prompt": ({}, ["generate", "--base", "tiny-gpt2", "--raw", ""], "the prompt is empty"),
    "temperature-inf": ({}, ["generate", "--base", "tiny-gpt2", "--temperature", "inf", "Hi"], "temperature is out of range"),
    "export-below-a-file": ({"file": "x"}, ["export", "tiny-gpt2", "{file}/below"], "cannot write the export there"),
    "registry-typo": ({}, ["--registry", "{missing}", "list"], "no registry at"),
    "option-of-another-strategy": ({}, ["train", "--strategy", "full-fp16", "--dataset", "builtin:support", "--name", "x", "-o", "r=4"], "has no option 'r'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_every_bad_input_is_one_line_and_changes_nothing(cli_run, embedded_base, registry, tmp_path, case):
    files, argv, message = BAD_INPUTS[case]
    paths = {}
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        paths[name] = _write(tmp_path, name, content)
        paths[name.split("/")[0]] = tmp_path / name.split("/")[0]
    paths["missing"] = tmp_path / "missing-registry"
    args = []
    for arg in argv:
        for key, path in paths.items():
            arg = arg.replace("{" + key + "}", str(path))
        args.append(arg)
    before = _tree(registry.home)
    _one_line(cli_run(*args), message)
    assert _tree(registry.home) == before


def test_rm_and_runs_work_beside_a_damaged_index_row(cli_run, registry):
    publish_files(registry, "good")
    publish_files(registry, "bad")
    registry.db.execute("UPDATE versions SET manifest = '{truncated' WHERE name = 'bad'")
    assert cli_run("rm", "good-v1").exit_code == 0
    assert cli_run("runs").exit_code == 0


def test_a_mistyped_registry_is_not_created_by_generate_rm_or_tag(cli_run, tmp_path):
    typo = tmp_path / "regsitry"
    for argv in (["generate", "--base", "tiny-gpt2", "Hi"], ["rm", "x-v1"], ["tag", "x-v1", "prod"]):
        _one_line(cli_run("--registry", typo, *argv), "no registry at")
    assert not typo.exists()


def test_an_adapter_on_a_directory_base_is_pushed_merged_or_not_at_all(hub, cli_run, fake_strategies, embedded_base, dataset, tmp_path):
    import shutil

    base_dir = tmp_path / "base-dir"
    shutil.copytree(embedded_base.path, base_dir)
    (base_dir / "manifest.json").unlink()
    assert cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa", "--base", base_dir).exit_code == 0
    _one_line(cli_run("push", "fa-v1", "--repo", "alice/fa", "--base-repo", "alice/base"), "is a local directory, which others cannot fetch; pass --merge")
    assert cli_run("push", "fa-v1", "--repo", "alice/fa", "--merge").exit_code == 0


def test_settings_refuse_options_among_shared_settings():
    import ftreg

    with pytest.raises(ftreg.ConfigError, match="a strategy's options are passed on their own"):
        ftreg.settings({"strategy": "lora8bit", "dataset": "builtin:support", "name": "x", "options": {"r": 4}})
    assert ftreg.settings({"strategy": "lora8bit", "dataset": "builtin:support", "name": "x"}, options={"r": 4}).options["r"] == 4


def test_a_hub_file_name_that_leaves_the_download_folder_is_one_line(hub, cli_run, registry, tmp_path):
    weights = safetensors_bytes("w")
    _upload("mallory/traverse", {"model.safetensors": weights, "config.json": b"{}"}, tmp_path)
    repo = hub.store.repos[("model", "mallory/traverse")]
    head = repo["branches"]["main"]
    repo["commits"][head]["files"]["../../escape.json"] = hub.store.put_blob(b"{}")
    hub.store.save(repo)
    result = cli_run("pull", "mallory/traverse", "--name", "t")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert registry.entries() == [] and not (tmp_path.parent / "escape.json").exists()


def test_a_registry_on_a_read_only_directory_is_one_line(cli_run, registry):
    """chattr +i makes a directory read-only even for root (plain chmod does not stop root)."""
    import shutil
    import subprocess

    publish_files(registry, "a")
    registry.close()
    for sidecar in ("registry.db-wal", "registry.db-shm"):
        (registry.home / sidecar).unlink(missing_ok=True)
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(registry.home)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem cannot make a directory immutable")
    try:
        _one_line(cli_run("list"), "the registry index cannot be used")
        _one_line(cli_run("tag", "a-v1", "prod"), "the registry index cannot be used")
    finally:
        subprocess.run(["chattr", "-i", str(registry.home)], check=True)
