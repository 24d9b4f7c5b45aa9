"""Contract: a run killed with SIGKILL mid-epoch and resumed gives the same per-step losses as an
uninterrupted run (exactly for scratch on CPU, within 1e-5 relative for the Trainer strategies)."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from ftreg.contract import TrainingStrategy
from ftreg.datasets.loading import dataset_path
from ftreg.hookspecs import hookimpl
from ftreg.training.runs import list_runs

# 40 examples, batch 2, accumulation 2: ten optimizer steps per epoch, so step 4 is mid-epoch.
SETTINGS = ["--max-steps", "14", "--batch-size", "2", "--grad-accum", "2", "--logging-steps", "1", "--save-steps", "2",
            "--save-total-limit", "2", "--eval-split", "0", "--learning-rate", "1e-3", "--eval-steps", "100"]


def _ftreg(*args):
    return [sys.executable, "-m", "ftreg", *map(str, args)]


def _losses(registry, name):
    return json.loads((registry.resolve(name).path / "train_log.json").read_text())["train"]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "support40.json"
    path.write_text(json.dumps(json.loads(dataset_path("builtin:support").read_text())[:40]))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["scratch", "lora8bit", "full-fp16"])
def test_killed_and_resumed_run_matches_an_uninterrupted_one(strategy, embedded_base, registry, data):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    uninterrupted = subprocess.run(_ftreg("train", "--strategy", strategy, "--dataset", data, "--name", "whole", *SETTINGS), env=env, capture_output=True, text=True)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]

    child = subprocess.Popen(_ftreg("train", "--strategy", strategy, "--dataset", data, "--name", "cut", *SETTINGS), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        runs = [run for run in list_runs(registry) if run.record["settings"]["name"] == "cut"]
        if runs and any(step >= 4 for step, _ in runs[0].checkpoints()):
            break
        time.sleep(0.02)
    child.kill()  # SIGKILL: no chance to clean up
    child.wait()
    assert child.returncode == -9, "the run finished before it could be killed"

    [run] = [run for run in list_runs(registry) if run.record["settings"]["name"] == "cut"]
    assert run.status == "interrupted" and run.resumable
    assert not registry.exists("cut")
    resumed = subprocess.run(_ftreg("train", "--resume", run.id), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr

    whole, cut = _losses(registry, "whole"), _losses(registry, "cut")
    assert [step for step, _ in cut] == [step for step, _ in whole] == list(range(1, 15))
    if strategy == "scratch":
        assert cut == whole
    else:
        for (_, a), (_, b) in zip(whole, cut):
            assert b == pytest.approx(a, rel=1e-5)
    [run] = [run for run in list_runs(registry) if run.record["settings"]["name"] == "cut"]
    assert run.status == "finished" and run.record["published"] == "cut-v1"
    assert len(run.checkpoints()) <= 2  # --save-total-limit
    # The resumed version records the metrics of the whole run, not of its resumed part.
    whole_metrics, cut_metrics = registry.resolve("whole").metrics, registry.resolve("cut").metrics
    assert cut_metrics["train_steps"] == whole_metrics["train_steps"] == 14
    assert cut_metrics["train_loss"] == pytest.approx(whole_metrics["train_loss"], rel=1e-4)
    # Wall-clock figures cover the same work (both segments), so they stay of one order.
    assert 1 / 3 < cut_metrics["train_tokens_per_s"] / whole_metrics["train_tokens_per_s"] < 3


class _FailingStrategy(TrainingStrategy):
    """Writes checkpoints at steps 2 and 4 (and a half-written one at 6), then fails."""

    name = "boom"
    kind = "adapter"
    description = "fails after two checkpoints, for tests"

    def train(self, job):
        from ftreg.training import seal_checkpoint

        for step, state in ((2, "{}"), (4, '{"global_step": 4}'), (6, '{"global_st')):
            checkpoint = job.checkpoint_dir / f"checkpoint-{step}"
            checkpoint.mkdir(parents=True)
            (checkpoint / "trainer_state.json").write_text(state)
            if step < 6:  # checkpoint-6 was cut short: never sealed
                seal_checkpoint(checkpoint)
        raise RuntimeError("out of memory at step 5")


class _FailingPlugin:
    @hookimpl
    def register_training_strategies(self, register):
        register(_FailingStrategy())


def _table(stdout):
    """The rows of a table printed by the CLI, as dicts keyed by header, cut at the dashes' columns."""
    lines = stdout.splitlines()
    spans, start = [], 0
    for dashes in lines[1].split("  "):
        spans.append((start, start + len(dashes)))
        start += len(dashes) + 2
    spans[-1] = (spans[-1][0], None)
    cells = [[line[a:b].strip() for a, b in spans] for line in lines]
    return [dict(zip(cells[0], row)) for row in cells[2:]]


def test_runs_listing_and_resume_refusals(cli_run, embedded_base, fake_strategies, register_plugin, registry, tmp_path):
    from ftreg.training.runs import start_run

    empty = cli_run("runs")
    assert empty.exit_code == 0 and _table(empty.stdout) == []
    assert json.loads(cli_run("runs", "--json").stdout) == []

    data = tmp_path / "pairs.json"
    data.write_text(json.dumps([{"instruction": f"question {i}", "response": f"answer {i}"} for i in range(4)]))
    done = cli_run("train", "--strategy", "fake-adapter", "--dataset", data, "--name", "done", "--eval-split", "0")
    assert done.exit_code == 0 and done.stdout.strip() == "done-v1", done.output
    register_plugin(_FailingPlugin(), "failing-strategy")
    failed = cli_run("train", "--strategy", "boom", "--dataset", data, "--name", "boomed", "--eval-split", "0")
    assert failed.exit_code != 0 and isinstance(failed.exception, RuntimeError)
    assert not registry.exists("boomed")
    # A run whose process died without a word: "running" on record, its pid gone, no checkpoint.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    cut = start_run(registry, {"name": "cut", "strategy": "scratch"}, None)
    cut.update(pid=int(dead.stdout))

    runs = {run["id"]: run for run in json.loads(cli_run("runs", "--json").stdout)}
    assert len(runs) == 3
    by_name = {run["settings"]["name"]: run for run in runs.values()}
    assert {name: (run["status"], run["resumable"], run["newest_checkpoint_step"], run["published"], run["settings"]["strategy"]) for name, run in by_name.items()} == {
        "done": ("finished", False, None, "done-v1", "fake-adapter"),
        "boomed": ("failed", True, 4, None, "boom"),  # the half-written checkpoint-6 does not count
        "cut": ("interrupted", False, None, None, "scratch"),
    }
    assert by_name["boomed"]["error"] == "RuntimeError: out of memory at step 5"
    assert by_name["done"]["error"] is None and by_name["done"]["id"].startswith("done-")
    assert registry.resolve("done-v1").manifest["run"] == by_name["done"]["id"]
    assert by_name["done"]["dataset_fingerprint"] == registry.resolve("done-v1").manifest["dataset"]["fingerprint"]

    rows = {row["RUN"]: row for row in _table(cli_run("runs").stdout)}
    assert set(rows) == set(runs)
    assert {(row["STRATEGY"], row["STATUS"], row["CHECKPOINT"], row["PUBLISHED"]) for row in rows.values()} == {
        ("fake-adapter", "finished", "", "done-v1"),
        ("boom", "failed (resumable)", "4", ""),
        ("scratch", "interrupted", "", ""),
    }
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row["STARTED (UTC)"]) for row in rows.values())

    for name, pattern in (("done", r"already published done-v1; resuming would publish it twice"),
                          ("cut", r"is interrupted; only an interrupted or failed run with a checkpoint")):
        refused = cli_run("train", "--resume", by_name[name]["id"])
        assert refused.exit_code == 2 and re.search(rf"Error: run {by_name[name]['id']} {pattern}", refused.stderr), refused.output
    for bad in ("no-such-run", "../runs", ".hidden"):
        result = cli_run("train", "--resume", bad)
        assert result.exit_code == 2 and f"unknown run {bad!r}" in result.stderr, result.output
    assert [e.ref for e in registry.entries()] == ["done-v1", "tiny-gpt2-v1"]


def test_a_run_cannot_be_resumed_twice_at_once(registry):
    from ftreg.errors import ConfigError
    from ftreg.training.runs import load_run, start_run

    run = start_run(registry, {"name": "r", "strategy": "scratch"}, None)
    run.lock()
    with pytest.raises(ConfigError, match="being trained by another process"):
        load_run(registry, run.id).lock()
