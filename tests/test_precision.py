"""`precision`: what a run computes in is chosen before training, honoured, and recorded as chosen."""

import json

import pytest

from conftest import write_json
from ftreg.engines.precision import native_half_precisions
from ftreg.training.config import upgrade_settings


@pytest.fixture
def dataset(tmp_path):
    return write_json(tmp_path / "d.json", [{"instruction": f"question {i}", "response": f"answer number {i}"} for i in range(8)])


def test_a_strategy_that_says_nothing_trains_and_is_recorded_in_fp32(cli_run, fake_strategies, embedded_base, registry, dataset):
    result = cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa")
    assert result.exit_code == 0, result.output
    assert registry.resolve("fa-v1").config["precision"] == "fp32"  # whatever this machine could do
    refused = cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa", "--precision", "bf16")
    assert refused.exit_code == 2
    assert refused.stderr.strip().splitlines()[-1].endswith("precision 'bf16': strategy 'fake-adapter' trains in fp32 only")


@pytest.mark.parametrize(("flags", "message"), [
    (["--precision", "fp8"], "'fp8' is not one of 'auto', 'fp32', 'bf16', 'fp16'"),
    (["--strategy", "scratch", "--precision", "fp16"], "precision 'fp16': strategy 'scratch' trains in fp32, bf16 only"),
])
def test_a_precision_that_cannot_be_used_is_refused_by_name(cli_run, registry, dataset, flags, message):
    result = cli_run("train", "--strategy", "lora8bit", "--dataset", dataset, "--name", "p", *flags)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert registry.entries() == []


def test_settings_recorded_before_precision_existed_mean_what_they_did_then():
    assert upgrade_settings({"strategy": "lora8bit", "dataset": "d", "name": "n"}, "old")["precision"] == "fp32"
    assert upgrade_settings({"strategy": "scratch", "dataset": "d", "name": "n"}, "old")["precision"] == "fp32"
    # full-fp16 chose FP16 on CUDA and fp32 elsewhere; auto still chooses FP16 on CUDA.
    assert upgrade_settings({"strategy": "full-fp16", "dataset": "d", "name": "n"}, "old")["precision"] == "auto"
    assert upgrade_settings({"strategy": "lora8bit", "dataset": "d", "name": "n", "precision": "bf16"}, "new")["precision"] == "bf16"


@pytest.mark.slow
def test_lora8bit_in_fp32_when_asked_whatever_the_machine(cli_run, embedded_base, registry, dataset):
    common = ["train", "--strategy", "lora8bit", "--dataset", dataset, "--max-steps", "1", "--batch-size", "2", "--eval-split", "0"]
    assert cli_run(*common, "--name", "full", "--precision", "fp32").exit_code == 0
    entry = registry.resolve("full-v1")
    args = json.loads((entry.path / "training_args.json").read_text())
    assert entry.config["precision"] == "fp32" and (args["bf16"], args["fp16"]) == (False, False)
    auto = cli_run(*common, "--name", "auto")
    assert auto.exit_code == 0, auto.output
    chosen = native_half_precisions()[0] if native_half_precisions() else "fp32"
    auto_args = json.loads((registry.resolve("auto-v1").path / "training_args.json").read_text())
    assert registry.resolve("auto-v1").config["precision"] == chosen and auto_args["bf16"] == (chosen == "bf16")
