"""Contract: a run killed with SIGKILL mid-epoch and resumed gives the same per-step losses as an
uninterrupted run (exactly for scratch on CPU, within 1e-5 relative for the Trainer strategies)."""

import json
import os
import subprocess
import sys
import time

import pytest

from ftreg.datasets.loading import dataset_path
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


def test_runs_listing_and_resume_refusals(cli_run, registry):
    assert cli_run("runs").exit_code == 0
    result = cli_run("train", "--resume", "no-such-run")
    assert result.exit_code == 2 and "unknown run 'no-such-run'" in result.stderr


def test_a_run_cannot_be_resumed_twice_at_once(registry):
    from ftreg.errors import ConfigError
    from ftreg.training.runs import load_run, start_run

    run = start_run(registry, {"name": "r", "strategy": "scratch"}, None)
    run.lock()
    with pytest.raises(ConfigError, match="being resumed by another process"):
        load_run(registry, run.id).lock()
