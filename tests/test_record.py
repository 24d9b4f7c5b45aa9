"""The record is the truth: what a version needs cannot vanish, and what it says it used was used."""

import json
import math

import pytest

import ftreg

from conftest import publish_files, write_json


@pytest.fixture
def dataset(tmp_path):
    return write_json(tmp_path / "d.json", [{"instruction": f"q{i}", "response": f"answer {i}"} for i in range(6)])


def test_rm_refuses_a_version_others_depend_on(cli_run, fake_strategies, embedded_base, registry, dataset):
    for _ in range(2):
        assert cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa").exit_code == 0
    assert cli_run("train", "--from", "fa-v1").exit_code == 0  # fa-v3 names fa-v1 as its parent
    result = cli_run("rm", "tiny-gpt2-v1")
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: tiny-gpt2-v1 is needed by 3 other versions: fa-v1 (base), fa-v2 (base), fa-v3 (base); remove them first or pass --force"
    assert registry.exists("tiny-gpt2-v1") and (embedded_base.path / "model.safetensors").is_file()
    result = cli_run("rm", "fa-v1")
    assert result.exit_code == 2 and "fa-v1 is needed by 1 other version: fa-v3 (parent)" in result.stderr
    assert cli_run("verify", "--all").stdout.strip() == "4 versions checked, 0 problems"


def test_forced_rm_leaves_orphans_that_verify_and_show_report(cli_run, fake_strategies, embedded_base, registry, dataset):
    assert cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa").exit_code == 0
    assert cli_run("train", "--from", "fa-v1").exit_code == 0
    assert cli_run("rm", "tiny-gpt2-v1", "--force").exit_code == 0
    assert cli_run("rm", "fa-v1", "--force").exit_code == 0
    verify = cli_run("verify", "--all")
    assert verify.exit_code == 1
    assert "fa-v2: orphaned: its base tiny-gpt2-v1 is no longer in the registry" in verify.stderr
    assert "fa-v2: orphaned: its parent fa-v1 is no longer in the registry" in verify.stderr
    assert verify.stdout.strip() == "1 version checked, 2 problems"
    shown = cli_run("show", "fa-v2")
    assert "orphaned:  its base tiny-gpt2-v1 is no longer in the registry" in shown.stdout
    assert json.loads(cli_run("show", "fa-v2", "--json").stdout)["orphaned"] == [
        "fa-v2: orphaned: its base tiny-gpt2-v1 is no longer in the registry",
        "fa-v2: orphaned: its parent fa-v1 is no longer in the registry",
    ]


def test_a_setting_a_strategy_does_not_have_is_refused_naming_it(cli_run, registry, dataset):
    result = cli_run("train", "--strategy", "full-fp16", "--dataset", dataset, "--name", "x", "-o", "r=16")
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: strategy 'full-fp16' has no option 'r' (its options: none)"
    result = cli_run("train", "--strategy", "lora8bit", "--dataset", dataset, "--name", "x", "-o", "patience=2")
    assert result.exit_code == 2 and "strategy 'lora8bit' has no option 'patience' (its options: r, alpha, dropout)" in result.stderr
    result = cli_run("train", "--strategy", "scratch", "--dataset", dataset, "--name", "x", "-o", "patience=2", "--eval-split", "0")
    assert result.exit_code == 2 and "scratch option patience needs held-out examples to evaluate on; set --eval-split or --eval-dataset" in result.stderr
    assert not registry.exists("x")


@pytest.mark.slow
def test_trainer_strategies_evaluate_every_eval_steps_and_log_a_short_run(cli_run, embedded_base, registry, dataset):
    result = cli_run("train", "--strategy", "lora8bit", "--dataset", dataset, "--name", "ev", "--max-steps", "3",
                     "--batch-size", "1", "--grad-accum", "1", "--eval-split", "0.34", "--eval-steps", "1", "--eval-generate", "5")
    assert result.exit_code == 0, result.output
    entry = registry.resolve("ev")
    log = json.loads((entry.path / "train_log.json").read_text())
    assert [step for step, _ in log["eval"]] == [1, 2, 3]  # every step, as --eval-steps 1 asks
    assert [step for step, _ in log["train"]] == [1, 3]  # logging_steps 50 is longer than the run: first and last
    assert entry.metrics["eval_loss"] == pytest.approx(log["eval"][-1][1], rel=1e-5)
    assert entry.metrics["eval_perplexity"] == pytest.approx(math.exp(entry.metrics["eval_loss"]), rel=1e-5)
    # --eval-generate: the held-out answers scored by every metric (more asked for than held out is fine)
    assert 0 <= entry.metrics["eval_rouge_l"] <= 1 and 0 <= entry.metrics["eval_bleu"] <= 100 and "eval_exact_match" in entry.metrics
    assert (entry.path / "loss.png").read_bytes()[:4] == b"\x89PNG" and "loss.png" in entry.manifest["files"]


def test_removing_deletes_files_only_after_the_index_commits(registry, monkeypatch):
    """A failure between the index change and the file removal leaves the version listed with its files, or unlisted."""
    import sqlite3

    from ftreg.registry import db as dbmod

    entry = publish_files(registry, "keep")
    real_write = dbmod.write

    class FailingCommit:
        def __init__(self, db):
            self.inner = real_write(db)

        def __enter__(self):
            return self.inner.__enter__()

        def __exit__(self, *exc):
            self.inner.__exit__(sqlite3.OperationalError, sqlite3.OperationalError("disk full"), None)
            raise sqlite3.OperationalError("disk full")

    monkeypatch.setattr(dbmod, "write", FailingCommit)
    with pytest.raises(sqlite3.OperationalError):
        registry.remove("keep-v1")
    monkeypatch.setattr(dbmod, "write", real_write)
    assert registry.exists("keep-v1") and registry.problems(registry.resolve("keep-v1")) == []
    assert (entry.path / "adapter_model.safetensors").is_file()


def test_from_reproduces_from_another_directory_and_refuses_changed_data(cli_run, fake_strategies, embedded_base, registry, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    write_json(work / "d.json", [{"instruction": f"q{i}", "response": f"answer {i}"} for i in range(6)])
    assert cli_run("train", "--strategy", "fake-adapter", "--dataset", "d.json", "--name", "fa").exit_code == 0
    first = registry.resolve("fa-v1")
    assert first.config["dataset"] == str(work / "d.json") and first.config["format"] == "instruction"  # absolute, and the detected format pinned
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = cli_run("train", "--from", "fa-v1")
    assert again.exit_code == 0, again.output
    assert registry.resolve("fa-v2").manifest["dataset"]["fingerprint"] == first.manifest["dataset"]["fingerprint"]

    write_json(work / "d.json", [{"instruction": "edited", "response": "since"}] * 3)
    changed = cli_run("train", "--from", "fa-v1")
    assert changed.exit_code == 2
    assert f"{work / 'd.json'} has changed since fa-v1 was trained on it" in changed.stderr and "pass it explicitly as --dataset" in changed.stderr
    explicit = cli_run("train", "--from", "fa-v1", "--dataset", work / "d.json")
    assert explicit.exit_code == 0, explicit.output
    assert not registry.exists("fa-v4")


def test_from_refuses_a_format_whose_plugin_is_gone(cli_run, fake_strategies, registry, dataset):
    publish_files(registry, "gone", config={"strategy": "fake-adapter", "dataset": str(dataset), "name": "gone", "format": "mdfaq"})
    result = cli_run("train", "--from", "gone-v1")
    assert result.exit_code == 2 and "unknown dataset format 'mdfaq'" in result.stderr


def test_pulling_the_same_commit_twice_returns_the_existing_version(hub, cli_run, fake_strategies, embedded_base, registry, dataset):
    assert cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa").exit_code == 0
    assert cli_run("push", "fa-v1", "--repo", "alice/fa", "--base-repo", "alice/tiny").exit_code == 0
    first = cli_run("pull", "alice/fa", "--name", "copy")
    assert first.exit_code == 0 and first.stdout == "copy-v1\n"
    second = cli_run("pull", "alice/fa", "--name", "copy")
    assert second.exit_code == 0 and second.stdout == "copy-v1\n"
    assert "is already registered as copy-v1" in second.stderr
    assert [entry.ref for entry in registry.entries("copy")] == ["copy-v1"]


def test_exported_files_follow_the_umask(cli_run, fake_strategies, embedded_base, registry, dataset, tmp_path):
    import os
    import stat

    assert cli_run("train", "--strategy", "fake-checkpoint", "--dataset", dataset, "--name", "fc").exit_code == 0
    umask = os.umask(0o022)
    try:
        out = tmp_path / "out"
        assert cli_run("export", "fc-v1", out).exit_code == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {stat.S_IMODE(path.stat().st_mode) for path in out.iterdir()} == {0o644}


def test_gc_lists_then_removes_what_nothing_needs(cli_run, fake_strategies, embedded_base, registry, dataset, monkeypatch):
    import os
    import time

    from ftreg.registry import store

    assert cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa", "--save-steps", "1").exit_code == 0
    [run] = [run for run in ftreg.runs(registry=registry) if run.record["settings"]["name"] == "fa"]
    run.checkpoint_dir.mkdir(exist_ok=True)
    (run.checkpoint_dir / "step-1").mkdir()  # as a strategy leaves them; the run finished, so nothing resumes from it
    leftover = registry.store / "fa" / "v7"  # a directory of no listed version
    leftover.mkdir(parents=True)
    stale = registry.tmp / "stage-dead"
    stale.mkdir()
    old = time.time() - store.STALE_AFTER_S - 10
    os.utime(stale, (old, old))

    listed = cli_run("gc")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert f"would remove {run.checkpoint_dir}: checkpoints of run {run.id}, which finished as fa-v1" in lines
    assert f"would remove {leftover}: not a listed version (left by an interrupted publish or rm)" in lines
    assert f"would remove {stale}: a staging directory no live process uses" in lines
    assert lines[-1] == "3 items; run `ftreg gc --yes` to remove them."
    assert leftover.exists() and stale.exists() and run.checkpoint_dir.exists()  # listing removes nothing

    removed = cli_run("gc", "--yes")
    assert removed.exit_code == 0 and removed.stdout.count("removed ") == 3
    assert not leftover.exists() and not stale.exists() and not run.checkpoint_dir.exists()
    assert registry.problems(registry.resolve("fa-v1")) == [] and (run.path / "run.json").is_file()
    assert cli_run("gc").stdout == "Nothing to remove.\n"


def test_eval_generate_without_held_out_examples_is_refused_before_training(cli_run, embedded_base, dataset):
    result = cli_run("train", "--strategy", "lora8bit", "--dataset", dataset, "--name", "ev", "--eval-split", "0", "--eval-generate", "3")
    assert result.exit_code == 2 and "eval_generate needs held-out examples" in result.stderr
