"""Plain output: training shows one bar and a summary; library noise a user cannot act on is silenced at its source."""

import json

import pytest

from conftest import write_json

NOISE = ("attention_mask", "loss_type", "Loading weights", "Writing model shards", "{'", "eval_runtime", "Warning", "warn")


@pytest.fixture
def dataset(tmp_path):
    return write_json(tmp_path / "d.json", [{"instruction": f"question {i}", "response": f"answer number {i}"} for i in range(8)])


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["lora8bit", "full-fp16", "scratch"])
def test_training_output_is_one_bar_and_a_summary(cli_run, embedded_base, registry, dataset, strategy):
    result = cli_run("train", "--strategy", strategy, "--dataset", dataset, "--name", "plain", "--max-steps", "3",
                     "--batch-size", "2", "--grad-accum", "1", "--eval-split", "0.25", "--eval-steps", "1", "--logging-steps", "1")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.strip()]
    noisy = [line for line in lines if any(word in line for word in NOISE)]
    assert noisy == [], noisy
    entry = registry.resolve("plain-v1")
    assert lines[-1].startswith(f"published plain-v1 ({entry.path}): train_loss ") and "eval perplexity" in lines[-1] and "tokens/s" in lines[-1]
    assert result.stdout == "plain-v1\n"
    # Numbers stay numbers wherever they are written down: the loss log, the record, --json.
    log = json.loads((entry.path / "train_log.json").read_text())
    assert log["train"] and all(isinstance(value, (int, float)) for point in log["train"] + log["eval"] for value in point)
    shown = json.loads(cli_run("show", "plain-v1", "--json").stdout)
    assert all(isinstance(value, (int, float)) for value in shown["metrics"].values()), shown["metrics"]


def test_the_summary_names_the_version_and_its_numbers(cli_run, fake_strategies, embedded_base, registry, dataset):
    result = cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa", "-o", "loss=0.5")
    assert result.exit_code == 0 and result.stdout == "fa-v1\n"
    assert result.stderr.strip().splitlines()[-1] == f"published fa-v1 ({registry.resolve('fa-v1').path}): train_loss 0.5"


def test_quiet_prints_only_the_reference(cli_run, fake_strategies, embedded_base, registry, dataset):
    result = cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa", "--quiet")
    assert result.exit_code == 0, result.output
    assert (result.stdout, result.stderr) == ("fa-v1\n", "")


def test_quiet_and_verbose_together_are_refused(cli_run, registry, dataset):
    result = cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa", "-q", "-v")
    assert result.exit_code == 2 and "--quiet and --verbose" in result.stderr


@pytest.mark.slow
def test_verbose_lets_the_libraries_speak(dataset, tmp_path):
    from conftest import run_ftreg

    common = ["train", "--strategy", "lora8bit", "--dataset", dataset, "--max-steps", "1", "--batch-size", "2", "--eval-split", "0"]
    env = {"FTREG_HOME": str(tmp_path / "home")}
    quiet = run_ftreg(*common, "--name", "q", "--quiet", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert (quiet.stdout, quiet.stderr) == ("q-v1\n", "")
    verbose = run_ftreg(*common, "--name", "v", "-v", env=env)
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout == "v-v1\n"
    # transformers' loading bar and info records, silenced by default, are back.
    assert "Loading weights" in verbose.stderr and "transformers" in verbose.stderr, verbose.stderr[-2000:]
    assert verbose.stderr.rstrip().splitlines()[-1].startswith("published v-v1")


@pytest.mark.slow
def test_bitsandbytes_is_loaded_without_fetching_a_kernel_from_the_hub():
    """On CPUs with AVX512-BF16 bitsandbytes' import asks `kernels` for a 4-bit kernel from the
    Hub: a network call, and a warning in every 8-bit training. ftreg trains in 8 bits offline."""
    import subprocess
    import sys

    pytest.importorskip("kernels")
    probe = """
import json, sys
import kernels
asked = []
def get_kernel(*args, **kwargs):
    asked.append(args)
    raise RuntimeError("no kernel")
kernels.get_kernel = get_kernel
from ftreg.engines.quiet import bitsandbytes_noise_silenced
with bitsandbytes_noise_silenced():
    import bitsandbytes
from bitsandbytes.functional import has_avx512bf16
print(json.dumps({"asked": asked, "kernels_put_back": sys.modules["kernels"] is kernels, "avx512bf16": has_avx512bf16()}))
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    if not seen["avx512bf16"]:
        pytest.skip("bitsandbytes asks for the kernel only on CPUs with AVX512-BF16")
    assert seen["asked"] == [], "bitsandbytes asked the Hub for a kernel"
    assert seen["kernels_put_back"]
