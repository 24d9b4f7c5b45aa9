"""full-fp16 and scratch: train end to end from the CLI, publish checkpoints that generate."""

import json
import math

import pytest

from conftest import write_json
from ftreg import plugins
from ftreg.engines import optim
from ftreg.engines.precision import native_half_precisions
from test_train_generate import PAIRS

QUICK = ["--max-steps", "3", "--batch-size", "2", "--grad-accum", "2", "--eval-split", "0.34"]


@pytest.fixture
def dataset(tmp_path):
    return write_json(tmp_path / "support.json", PAIRS)


def _train(cli_run, *args):
    result = cli_run("train", *args)
    assert result.exit_code == 0, result.output
    return result


def _loads_with_plain_transformers(entry):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(entry.path)
    tokenizer = AutoTokenizer.from_pretrained(entry.path)
    return model, tokenizer


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["full-fp16", "scratch"])
def test_checkpoint_strategies_publish_models_that_generate(strategy, cli_run, embedded_base, registry, dataset):
    result = _train(cli_run, "--strategy", strategy, "--dataset", dataset, "--name", "full", *QUICK)
    entry = registry.resolve("full")
    assert entry.kind == "checkpoint" and entry.strategy == strategy and entry.base == "tiny-gpt2-v1"
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(entry.manifest["files"])
    assert {"train_loss", "eval_loss", "train_tokens_per_s"} <= set(entry.metrics) and entry.metrics["train_tokens_per_s"] > 0
    model, tokenizer = _loads_with_plain_transformers(entry)
    assert model.num_parameters() == embedded_base.metrics["parameters"]
    # auto chose the fastest precision this machine computes that the strategy honours, trained in it and recorded it.
    chosen = next((p for p in native_half_precisions() if p in plugins.get_training_strategy(strategy).precisions), "fp32")
    assert entry.config["precision"] == chosen
    if strategy == "full-fp16":
        args = json.loads((entry.path / "training_args.json").read_text())
        assert (args["bf16"], args["fp16"]) == (chosen == "bf16", chosen == "fp16")
        assert (f"precision: {chosen} mixed" if chosen != "fp32" else "training runs in fp32") in result.stderr
    generated = cli_run("generate", "--adapter", "full", "--greedy", "--max-new-tokens", "5", "--json", "Is shipping free?")
    assert generated.exit_code == 0, generated.output
    assert json.loads(generated.stdout)[0]["model"] == "full-v1"


@pytest.mark.slow
def test_scratch_from_random_weights_with_loss_curve(cli_run, embedded_base, registry, dataset):
    _train(cli_run, "--strategy", "scratch", "-o", "init=config:tiny", "--dataset", dataset, "--name", "fresh", "--eval-steps", "1", *QUICK)
    entry = registry.resolve("fresh")
    assert (entry.path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = json.loads((entry.path / "train_log.json").read_text())
    assert [step for step, _ in log["train"]] == [1, 2, 3] and [step for step, _ in log["eval"]] == [1, 2, 3]
    assert entry.metrics["eval_loss"] == pytest.approx(min(loss for _, loss in log["eval"]), rel=1e-5)
    assert entry.metrics["eval_perplexity"] == pytest.approx(math.exp(entry.metrics["eval_loss"]), rel=1e-5)
    # Random init: the weights differ from the base's, the shape is the preset's.
    model, _ = _loads_with_plain_transformers(entry)
    assert model.config.n_embd == 128 and model.config.n_layer == 4


@pytest.mark.slow
def test_scratch_stops_early_and_keeps_the_best_weights(cli_run, embedded_base, registry, dataset):
    # A learning rate this high makes eval loss rise after the first steps.
    result = _train(cli_run, "--strategy", "scratch", "--dataset", dataset, "--name", "early", "--max-steps", "12",
                    "--eval-steps", "1", "-o", "patience=2", "--learning-rate", "0.5", "--grad-accum", "1", "--eval-split", "0.34")
    entry = registry.resolve("early")
    log = json.loads((entry.path / "train_log.json").read_text())
    assert entry.metrics["train_steps"] < 12 and "stopped at step" in result.stderr
    evals = [loss for _, loss in log["eval"]]
    assert entry.metrics["eval_loss"] == pytest.approx(min(evals), rel=1e-5)
    assert evals[-1] > min(evals)


def test_scratch_rejects_unknown_init(cli_run, embedded_base, dataset):
    result = cli_run("train", "--strategy", "scratch", "-o", "init=config:huge", "--dataset", dataset, "--name", "x", "--max-steps", "1")
    assert result.exit_code == 2 and "unknown preset; available: config:tiny" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy", "scratch", "--max-length", "3"], "no example is left to train on"),
        (["--strategy", "scratch", "-o", "init={bad}"], "expected config:PRESET or a GPT-2 config.json file"),
        (["--strategy", "scratch", "-o", "init=config:tiny", "--max-length", "512"], "has n_positions 256, fewer than --max-length 512"),
        (["--strategy", "lora8bit", "--eval-split", "0.95"], "no example is left to train on"),
    ],
)
def test_settings_that_cannot_train_are_refused_before_training(cli_run, embedded_base, registry, dataset, args, message):
    result = cli_run("train", "--dataset", dataset, "--name", "x", "--max-steps", "2", *args)
    assert result.exit_code == 2 and message in result.stderr, result.output
    # Notes (the detected format, truncation) may come first; the error is one line, the last.
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ") and result.stderr.count("Error") == 1
    assert not registry.exists("x")


def test_init_file_that_is_not_json(cli_run, embedded_base, dataset, tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    result = cli_run("train", "--strategy", "scratch", "-o", f"init={bad}", "--dataset", dataset, "--name", "x")
    assert result.exit_code == 2 and "not a JSON config" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["full-fp16", "scratch"])
def test_training_time_and_tokens_per_second_leave_evaluations_out(strategy, cli_run, embedded_base, registry, dataset, monkeypatch):
    """Each evaluation is made to take a second; three steps evaluating every step must not count them."""
    import time

    import transformers

    import ftreg.engines.loop

    def slowed(evaluate):
        def slow(*args, **kwargs):
            time.sleep(1.0)
            return evaluate(*args, **kwargs)

        return slow

    monkeypatch.setattr(transformers.Trainer, "evaluate", slowed(transformers.Trainer.evaluate))
    monkeypatch.setattr(ftreg.engines.loop, "evaluate", slowed(ftreg.engines.loop.evaluate))
    _train(cli_run, "--strategy", strategy, "--dataset", dataset, "--name", "timed", "--eval-steps", "1", *QUICK)
    metrics = registry.resolve("timed").metrics
    assert metrics["train_runtime_s"] < 2.0, metrics  # three slowed evaluations alone take 3 s
    assert metrics["train_tokens_per_s"] > 0


def test_the_scratch_loop_updates_with_fused_adamw(cli_run, embedded_base, registry, dataset, monkeypatch):
    """One kernel per tensor rather than a dozen passes over every weight, as the Trainer's default
    AdamW is from torch 2.8 on; checked on the optimizer the loop really builds."""
    from ftreg.engines import loop

    built = []

    def recording_adamw(*args, **kwargs):
        built.append(optim.adamw(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(loop, "adamw", recording_adamw)
    _train(cli_run, "--strategy", "scratch", "--dataset", dataset, "--name", "fused", *QUICK)
    assert [optimizer.defaults["fused"] for optimizer in built] == [True]


def test_the_trainer_counts_the_models_parameters_once_a_run(cli_run, embedded_base, registry, dataset, monkeypatch):
    """The Trainer's FLOP count asks the model for its parameter count at every micro-batch, a walk
    over every parameter (0.6 ms on the embedded base's LoRA model) for a number that never changes."""
    import transformers

    counted = []
    count_parameters = transformers.PreTrainedModel.num_parameters

    def recording(model, *args, **kwargs):
        counted.append(kwargs.get("exclude_embeddings", False))
        return count_parameters(model, *args, **kwargs)

    monkeypatch.setattr(transformers.PreTrainedModel, "num_parameters", recording)
    _train(cli_run, "--strategy", "full-fp16", "--dataset", dataset, "--name", "counted", *QUICK)
    assert counted.count(True) == 1, counted
